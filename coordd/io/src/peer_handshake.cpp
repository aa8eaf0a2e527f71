#include "coord/io/peer_handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "coord/base/assert.h"
#include "coord/base/limits.h"

namespace coord::io::peer_handshake {
namespace {

constexpr std::size_t hello_fixed_bytes = 1 + 1 + 8 + 8 + nonce_bytes + 1;
constexpr std::size_t challenge_bytes = 1 + 1 + 8 + 8 + nonce_bytes + proof_bytes;

// The labels tell the two proofs of one handshake apart, so a proof made by
// one side is never accepted as the other's.
constexpr std::string_view dialer_label = "coord peer handshake v1: dialer";
constexpr std::string_view acceptor_label = "coord peer handshake v1: acceptor";

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= std::uint64_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
  return v;
}

template <std::size_t N>
void put_array(std::string& out, const std::array<std::uint8_t, N>& a) {
  out.append(reinterpret_cast<const char*>(a.data()), N);
}

template <std::size_t N>
void get_array(const char* p, std::array<std::uint8_t, N>& a) {
  std::memcpy(a.data(), p, N);
}

Status malformed(const char* what) {
  return Status(ErrorCode::MarshallingError, std::string("peer handshake: ") + what);
}

std::string frame(Kind kind, const std::string& body) {
  COORD_ASSERT(body.size() <= handshake_body_bytes_max, "handshake body too large");
  std::string out(magic.begin(), magic.end());
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.push_back(static_cast<char>((body.size() >> 8) & 0xff));
  out += body;
  return out;
}

}  // namespace

std::string_view to_string(Refusal r) {
  switch (r) {
    case Refusal::Malformed:
      return "malformed handshake";
    case Refusal::Version:
      return "unsupported handshake version";
    case Refusal::ClusterMismatch:
      return "member of another cluster";
    case Refusal::UnknownNode:
      return "unknown node id, and no room for another unlisted link";
    case Refusal::WrongNode:
      return "wrong node id at this address";
    case Refusal::AuthMismatch:
      return "cluster secret configured on one side only";
    case Refusal::BadProof:
      return "wrong cluster secret (proof does not match)";
    case Refusal::DuplicateNode:
      return "duplicate node id";
    case Refusal::WrongDirection:
      return "the higher node id dialed a server that dials it";
    case Refusal::Busy:
      return "too many handshakes in progress";
  }
  return "unknown reason";
}

std::string encode(const Message& m) {
  std::string body;
  if (const auto* h = std::get_if<Hello>(&m)) {
    COORD_ASSERT(h->cluster_id.size() <= limits::peer_cluster_id_bytes_max, "cluster id too long");
    body.push_back(static_cast<char>(h->authenticated ? flag_authenticated : 0));
    body.push_back(0);
    put_u64(body, h->dialer.value());
    put_u64(body, h->acceptor.value());
    put_array(body, h->nonce);
    body.push_back(static_cast<char>(h->cluster_id.size()));
    body += h->cluster_id;
    return frame(Kind::Hello, body);
  }
  if (const auto* c = std::get_if<Challenge>(&m)) {
    body.push_back(static_cast<char>(c->authenticated ? flag_authenticated : 0));
    body.push_back(0);
    put_u64(body, c->acceptor.value());
    put_u64(body, c->dialer.value());
    put_array(body, c->nonce);
    put_array(body, c->proof);
    return frame(Kind::Challenge, body);
  }
  if (const auto* p = std::get_if<ProofMessage>(&m)) {
    put_array(body, p->proof);
    return frame(Kind::Proof, body);
  }
  if (std::holds_alternative<Welcome>(m)) return frame(Kind::Welcome, body);
  body.push_back(static_cast<char>(std::get<Refuse>(m).reason));
  return frame(Kind::Refuse, body);
}

Scan scan(std::string_view buffer) {
  Scan s;
  // A stranger is told apart by its first bytes, before a whole header.
  const std::size_t known = std::min(buffer.size(), magic.size());
  if (std::memcmp(buffer.data(), magic.data(), known) != 0) {
    s.state = Scan::State::BadMagic;
    return s;
  }
  if (buffer.size() < header_bytes) return s;
  if (static_cast<std::uint8_t>(buffer[4]) != version) {
    s.state = Scan::State::BadVersion;
    return s;
  }
  const std::size_t body = std::size_t{static_cast<std::uint8_t>(buffer[6])} |
                           (std::size_t{static_cast<std::uint8_t>(buffer[7])} << 8);
  if (body > handshake_body_bytes_max) {
    s.state = Scan::State::BadLength;
    return s;
  }
  if (buffer.size() < header_bytes + body) return s;
  s.state = Scan::State::Ready;
  s.size = header_bytes + body;
  return s;
}

Result<Message> decode(std::string_view whole) {
  const Scan s = scan(whole);
  if (s.state != Scan::State::Ready || s.size != whole.size()) return malformed("bad framing");
  const std::string_view body = whole.substr(header_bytes);
  const char* p = body.data();
  switch (static_cast<Kind>(static_cast<std::uint8_t>(whole[5]))) {
    case Kind::Hello: {
      if (body.size() < hello_fixed_bytes) return malformed("short hello");
      Hello h;
      const auto flags = static_cast<std::uint8_t>(p[0]);
      if ((flags & ~flag_authenticated) != 0 || p[1] != 0) return malformed("unknown hello flags");
      h.authenticated = flags & flag_authenticated;
      h.dialer = NodeId(get_u64(p + 2));
      h.acceptor = NodeId(get_u64(p + 10));
      get_array(p + 18, h.nonce);
      const std::size_t len = static_cast<std::uint8_t>(p[18 + nonce_bytes]);
      if (len > limits::peer_cluster_id_bytes_max) return malformed("cluster id too long");
      if (body.size() != hello_fixed_bytes + len) return malformed("hello length");
      h.cluster_id.assign(p + hello_fixed_bytes, len);
      return Message(std::move(h));
    }
    case Kind::Challenge: {
      if (body.size() != challenge_bytes) return malformed("challenge length");
      Challenge c;
      const auto flags = static_cast<std::uint8_t>(p[0]);
      if ((flags & ~flag_authenticated) != 0 || p[1] != 0) {
        return malformed("unknown challenge flags");
      }
      c.authenticated = flags & flag_authenticated;
      c.acceptor = NodeId(get_u64(p + 2));
      c.dialer = NodeId(get_u64(p + 10));
      get_array(p + 18, c.nonce);
      get_array(p + 18 + nonce_bytes, c.proof);
      return Message(c);
    }
    case Kind::Proof: {
      if (body.size() != proof_bytes) return malformed("proof length");
      ProofMessage m;
      get_array(p, m.proof);
      return Message(m);
    }
    case Kind::Welcome:
      if (!body.empty()) return malformed("welcome length");
      return Message(Welcome{});
    case Kind::Refuse: {
      if (body.size() != 1) return malformed("refuse length");
      const auto r = static_cast<std::uint8_t>(p[0]);
      if (r < static_cast<std::uint8_t>(Refusal::Malformed) ||
          r > static_cast<std::uint8_t>(Refusal::Busy)) {
        return malformed("unknown refusal");
      }
      return Message(Refuse{static_cast<Refusal>(r)});
    }
  }
  return malformed("unknown message kind");
}

Proof prove(Role role, std::string_view secret, std::string_view cluster_id, NodeId dialer,
            NodeId acceptor, const Nonce& nonce_dialer, const Nonce& nonce_acceptor) {
  COORD_ASSERT(cluster_id.size() <= limits::peer_cluster_id_bytes_max, "cluster id too long");
  std::string input(role == Role::Dialer ? dialer_label : acceptor_label);
  input.push_back('\0');
  input.push_back(static_cast<char>(cluster_id.size()));
  input.append(cluster_id);
  put_u64(input, dialer.value());
  put_u64(input, acceptor.value());
  put_array(input, nonce_dialer);
  put_array(input, nonce_acceptor);
  Proof out{};
  unsigned int out_len = 0;
  // HMAC() wants a key pointer even for an empty key.
  static const unsigned char empty_key = 0;
  const void* key = secret.empty() ? static_cast<const void*>(&empty_key) : secret.data();
  const unsigned char* done = HMAC(EVP_sha256(), key, static_cast<int>(secret.size()),
                                   reinterpret_cast<const unsigned char*>(input.data()),
                                   input.size(), out.data(), &out_len);
  COORD_ASSERT(done != nullptr && out_len == proof_bytes, "HMAC-SHA256 failed");
  return out;
}

bool same_proof(const Proof& a, const Proof& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Nonce fresh_nonce() {
  Nonce n{};
  const int ok = RAND_bytes(n.data(), static_cast<int>(n.size()));
  COORD_ASSERT(ok == 1, "the system has no randomness for handshake nonces");
  return n;
}

}  // namespace coord::io::peer_handshake
