// TLS for coordd's listeners: the files an operator names, the checks they
// pass before a server starts with them, and the OpenSSL contexts built
// from them (through Asio's ssl::context).
//
// A context is built whole or not at all: every file is read, the key must
// match the certificate, the certificate must be valid now, and the CA
// file must hold at least one certificate when clients are verified.
// Building one never touches a context in use, so that a reload (SIGHUP)
// that fails leaves the server with the one it had.
//
// Policy, the same for every listener: TLS 1.2 at least; TLS 1.2 limited
// to forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305,
// which excludes NULL, export, RC4 and 3DES); the server's order of
// preference; no renegotiation, no compression.
//
// Thread safety: the free functions are safe from any thread. TlsServer is
// reloaded on one thread and read from any (its current contexts are
// guarded); the contexts it hands out are
// shared_ptrs that connections keep for as long as they live.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "coord/base/status.h"

struct x509_st;
struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace coord::io {

// Whether the server asks clients for a certificate (ZooKeeper's
// ssl.clientAuth): none asks for none; want verifies one that is offered
// and lets a client without one in; need refuses a client without one.
// A certificate offered that does not chain to the CA fails the handshake
// in both want and need.
enum class TlsClientAuth { None, Want, Need };

// "none", "want" or "need"; BadArguments naming the choices otherwise.
Result<TlsClientAuth> parse_tls_client_auth(std::string_view text);
std::string_view to_string(TlsClientAuth auth);

struct TlsFiles {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM: its private key (unencrypted)
  std::string ca_file;    // PEM: the CAs that client certificates chain to
  TlsClientAuth client_auth = TlsClientAuth::None;
};

// The TLS flags of a server, as given: which listeners use TLS and the
// files they share. Checked by check_tls_options().
struct TlsOptions {
  TlsFiles files;
  // The secure client port; nullopt: none (0: any free port).
  std::optional<std::uint16_t> secure_client_port;
  bool http_tls = false;
  // Mutual TLS between the servers of a cluster, with the CA file as the
  // cluster's own CA.
  bool peer_tls = false;
};

// The combinations a server cannot start with, each with the flag to fix:
// TLS files without anything using them, a TLS listener without a
// certificate and key, client certificates asked for without a CA file.
// `client_port` is the plain port (0 with a secure port: none).
Status check_tls_options(const TlsOptions& options, std::uint16_t client_port);

// Whether a listener needs a server context at all.
inline bool tls_wanted(const TlsOptions& o) {
  return o.secure_client_port.has_value() || o.http_tls || o.peer_tls;
}

// A server context from `files`, or the first problem found, in one line
// that names the file (unreadable, not PEM, key not matching, expired or
// not yet valid, an empty CA file). `now_s` is the time (Unix seconds) the
// certificate must be valid at.
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_server_context(const TlsFiles& files,
                                                                           std::int64_t now_s);

// A context for links between peers, which both dial and accept: the same
// files, and a certificate required of the other side, verified against
// the CA file (which must be given).
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_peer_context(const TlsFiles& files,
                                                                         std::int64_t now_s);

// The subject of `cert` as RFC 2253 writes it (most specific name first,
// "CN=client,O=example,C=US"), which is what ZooKeeper's x509 provider
// takes as the id of a client's certificate. UTF-8 is kept as it is;
// special characters are escaped as RFC 2253 says.
std::string x509_subject_rfc2253(const x509_st* cert);

// The x509 id of the peer of a finished handshake: its certificate's
// subject when it sent one and it verified; nullopt otherwise.
std::optional<std::string> tls_peer_identity(ssl_st* ssl);

// The last OpenSSL error of this thread, as text (and the queue cleared).
std::string openssl_error_text();

// The contexts of a running server (for clients and HTTP, and with
// `peers` for peer links), and a reload from the same files that replaces
// them only when every one of them builds.
class TlsServer {
 public:
  static Result<std::unique_ptr<TlsServer>> create(TlsFiles files, bool peers, std::int64_t now_s);

  // For a connection accepted now; the connection keeps it alive.
  std::shared_ptr<boost::asio::ssl::context> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  // For a peer link made now; null without `peers`.
  std::shared_ptr<boost::asio::ssl::context> peer_current() const {
    std::lock_guard lock(mu_);
    return peer_;
  }
  // Reads the files again; on error the current context stays.
  Status reload(std::int64_t now_s);
  const TlsFiles& files() const { return files_; }

 private:
  TlsServer(TlsFiles files, bool peers) : files_(std::move(files)), peers_(peers) {}
  TlsFiles files_;
  bool peers_ = false;
  // current_ and peer_: the loop thread reloads them while the HTTP thread
  // takes the current one for a connection it accepts.
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  std::shared_ptr<boost::asio::ssl::context> peer_;
};

}  // namespace coord::io
