// The peer handshake: how two coord servers prove to each other that they
// are members of the same cluster before any Raft message flows between
// them. The bytes are specified in docs/formats/peer-handshake.md; in short:
//
//   dialer   -> acceptor  Hello      cluster id, both node ids, nonce_d
//   acceptor -> dialer    Challenge  nonce_a, proof_a
//   dialer   -> acceptor  Proof      proof_d
//   acceptor -> dialer    Welcome    (then consensus peer frames both ways)
//   either   -> other     Refuse     reason code, then the connection closes
//
// A proof is HMAC-SHA256 keyed with the shared cluster secret over a
// direction label, the cluster id, both node ids and both nonces: the
// secret never crosses the wire, a proof cannot be reflected back to its
// maker (the labels differ) and a recorded transcript cannot be replayed
// (the other side's nonce is fresh). Without a secret the same HMAC is
// keyed with the empty string: ids are checked, nobody is authenticated.
//
// Every message is an 8-byte header (magic "CDPR", version, kind, body
// length) and a body of at most handshake_body_bytes_max bytes, so a
// stranger can make the reader buffer at most a few hundred bytes.
//
// Thread safety: pure functions, except fresh_nonce() (the OS's random
// source, thread-safe).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "coord/base/ids.h"
#include "coord/base/status.h"

namespace coord::io::peer_handshake {

inline constexpr std::array<char, 4> magic = {'C', 'D', 'P', 'R'};
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_bytes = 8;
inline constexpr std::size_t handshake_body_bytes_max = 512;
inline constexpr std::size_t nonce_bytes = 32;
inline constexpr std::size_t proof_bytes = 32;

using Nonce = std::array<std::uint8_t, nonce_bytes>;
using Proof = std::array<std::uint8_t, proof_bytes>;

enum class Kind : std::uint8_t { Hello = 1, Challenge = 2, Proof = 3, Welcome = 4, Refuse = 5 };

// Why a side refuses; sent in a Refuse so that the other side's log says it.
enum class Refusal : std::uint8_t {
  Malformed = 1,        // not a handshake message, or one out of turn
  Version = 2,          // a handshake version this server does not speak
  ClusterMismatch = 3,  // a member of another cluster
  UnknownNode = 4,      // not in the peer set, and unlisted links are at their bound
  WrongNode = 5,        // the dialer expected another node id at this address
  AuthMismatch = 6,     // one side has a cluster secret, the other none
  BadProof = 7,         // the proof does not match: another secret, or a replay
  DuplicateNode = 8,    // the node id is this server's own, or already connected and alive
  WrongDirection = 9,   // the higher id dialed a lower one that knows it and dials itself
  Busy = 10,            // too many handshakes in progress
};
std::string_view to_string(Refusal r);

// Hello and Challenge carry this flag when the sender has a cluster secret.
inline constexpr std::uint8_t flag_authenticated = 1;

struct Hello {
  bool authenticated = false;
  NodeId dialer;
  NodeId acceptor;  // who the dialer expects to reach
  Nonce nonce{};
  std::string cluster_id;
};

struct Challenge {
  bool authenticated = false;
  NodeId acceptor;
  NodeId dialer;
  Nonce nonce{};
  Proof proof{};
};

struct ProofMessage {
  Proof proof{};
};

struct Welcome {};

struct Refuse {
  Refusal reason = Refusal::Malformed;
};

using Message = std::variant<Hello, Challenge, ProofMessage, Welcome, Refuse>;

std::string encode(const Message& m);

// For a stream reader: what the bytes at the front of `buffer` are.
struct Scan {
  enum class State { Incomplete, Ready, BadMagic, BadVersion, BadLength } state = State::Incomplete;
  std::size_t size = 0;  // when Ready: header and body
};
Scan scan(std::string_view buffer);

// Decodes exactly one whole message (as scan() measured it).
Result<Message> decode(std::string_view whole);

enum class Role { Dialer, Acceptor };

// The proof `role` sends. An empty secret gives the unauthenticated proof.
Proof prove(Role role, std::string_view secret, std::string_view cluster_id, NodeId dialer,
            NodeId acceptor, const Nonce& nonce_dialer, const Nonce& nonce_acceptor);

// Constant-time comparison, so a forger learns nothing from timing.
bool same_proof(const Proof& a, const Proof& b);

Nonce fresh_nonce();

}  // namespace coord::io::peer_handshake
