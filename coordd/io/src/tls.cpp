#include "coord/io/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coord/base/limits.h"

namespace coord::io {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3's own suites are
// all AEAD and keep OpenSSL's defaults.
constexpr const char* kCipherList =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

// Sessions resumed from a ticket must belong to this server's contexts.
constexpr unsigned char kSessionContext[] = "coordd";

Status file_error(std::string_view flag, const std::string& path, std::string_view why) {
  return Status(ErrorCode::BadArguments, std::string(flag) + " " + path + ": " + std::string(why));
}

// The file's PEM text, or why it cannot be had.
Result<std::string> read_pem(std::string_view flag, const std::string& path) {
  if (path.empty()) return file_error(flag, "(empty)", "no file named");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return file_error(flag, path, std::strerror(errno));
  std::string text;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > limits::tls_file_bytes_max) {
      std::fclose(f);
      return file_error(flag, path,
                        "larger than " + std::to_string(limits::tls_file_bytes_max) + " bytes");
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return file_error(flag, path, "read error");
  if (text.empty()) return file_error(flag, path, "empty");
  return text;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

BioPtr bio_of(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Validity at `now_s`: empty when valid, otherwise why not.
std::string validity_problem(const X509* cert, std::int64_t now_s) {
  time_t now = static_cast<time_t>(now_s);
  const ASN1_TIME* not_before = X509_get0_notBefore(cert);
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  auto text = [](const ASN1_TIME* t) {
    BioPtr out(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(out.get(), t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  };
  if (X509_cmp_time(not_before, &now) > 0) return "not valid before " + text(not_before);
  if (X509_cmp_time(not_after, &now) < 0) return "expired on " + text(not_after);
  return "";
}

}  // namespace

std::string openssl_error_text() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error())
    last = e;
  if (last == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

Result<TlsClientAuth> parse_tls_client_auth(std::string_view text) {
  if (text == "none") return TlsClientAuth::None;
  if (text == "want") return TlsClientAuth::Want;
  if (text == "need") return TlsClientAuth::Need;
  return Status(ErrorCode::BadArguments,
                "--tls-client-auth '" + std::string(text) + "': expected none, want or need");
}

std::string_view to_string(TlsClientAuth auth) {
  switch (auth) {
    case TlsClientAuth::None:
      return "none";
    case TlsClientAuth::Want:
      return "want";
    case TlsClientAuth::Need:
      return "need";
  }
  return "?";
}

Status check_tls_options(const TlsOptions& o, std::uint16_t client_port) {
  const TlsFiles& f = o.files;
  if (!tls_wanted(o)) {
    if (!f.cert_file.empty() || !f.key_file.empty() || !f.ca_file.empty() ||
        f.client_auth != TlsClientAuth::None) {
      return Status(ErrorCode::BadArguments,
                    "TLS files or --tls-client-auth given, but nothing uses TLS: add "
                    "--secure-client-port, --http-tls or --peer-tls");
    }
    return Status();
  }
  if (f.cert_file.empty() || f.key_file.empty()) {
    return Status(ErrorCode::BadArguments,
                  "TLS needs --tls-cert-file and --tls-key-file (the server's certificate and "
                  "its key)");
  }
  if (o.peer_tls && f.ca_file.empty()) {
    return Status(ErrorCode::BadArguments,
                  "--peer-tls needs --tls-ca-file: the CA of the cluster's certificates");
  }
  if (f.client_auth != TlsClientAuth::None && f.ca_file.empty()) {
    return Status(ErrorCode::BadArguments, "--tls-client-auth " +
                                               std::string(to_string(f.client_auth)) +
                                               " needs --tls-ca-file to verify clients with");
  }
  if (o.secure_client_port && *o.secure_client_port != 0 && *o.secure_client_port == client_port) {
    return Status(ErrorCode::BadArguments,
                  "--secure-client-port and --client-port are the same port");
  }
  return Status();
}

namespace {

// Peers verify each other both ways, whatever clients are asked for.
enum class Role { Server, Peer };

Result<std::shared_ptr<ssl::context>> build_context(const TlsFiles& files, std::int64_t now_s,
                                                    Role role) {
  ERR_clear_error();
  auto cert_pem = read_pem("--tls-cert-file", files.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = read_pem("--tls-key-file", files.key_file);
  if (!key_pem.ok()) return key_pem.status();
  std::optional<std::string> ca_pem;
  if (!files.ca_file.empty()) {
    auto ca = read_pem("--tls-ca-file", files.ca_file);
    if (!ca.ok()) return ca.status();
    ca_pem = std::move(ca).value();
  }

  // A peer context dials as well as accepts.
  auto ctx = std::make_shared<ssl::context>(role == Role::Peer ? ssl::context::tls
                                                               : ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(c, kCipherList) != 1) {
    return Status(ErrorCode::SystemError, "TLS cipher list refused: " + openssl_error_text());
  }
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);

  // The certificate and the chain after it.
  {
    BioPtr bio = bio_of(*cert_pem);
    X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
      return file_error("--tls-cert-file", files.cert_file,
                        "no PEM certificate (" + openssl_error_text() + ")");
    }
    if (std::string why = validity_problem(leaf.get(), now_s); !why.empty()) {
      return file_error("--tls-cert-file", files.cert_file, "the certificate is " + why);
    }
    if (SSL_CTX_use_certificate(c, leaf.get()) != 1) {
      return file_error("--tls-cert-file", files.cert_file, openssl_error_text());
    }
    SSL_CTX_clear_chain_certs(c);
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      // add0: the context owns it from here.
      if (SSL_CTX_add0_chain_cert(c, extra) != 1) {
        X509_free(extra);
        return file_error("--tls-cert-file", files.cert_file, openssl_error_text());
      }
    }
    ERR_clear_error();  // the end of the file reads as an error
  }
  {
    BioPtr bio = bio_of(*key_pem);
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
      return file_error("--tls-key-file", files.key_file,
                        "no unencrypted PEM private key (" + openssl_error_text() + ")");
    }
    if (SSL_CTX_use_PrivateKey(c, key.get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
      ERR_clear_error();
      return file_error("--tls-key-file", files.key_file,
                        "the key does not match the certificate in " + files.cert_file);
    }
  }
  if (ca_pem) {
    BioPtr bio = bio_of(*ca_pem);
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    int count = 0;
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      if (X509_NAME* n = X509_NAME_dup(X509_get_subject_name(ca))) sk_X509_NAME_push(names, n);
      X509_free(ca);
      ++count;
    }
    ERR_clear_error();
    if (count == 0) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return file_error("--tls-ca-file", files.ca_file, "no PEM certificate");
    }
    // Tells clients which CAs their certificate must chain to.
    SSL_CTX_set_client_CA_list(c, names);
  }
  if (role == Role::Peer) {
    if (!ca_pem) return file_error("--tls-ca-file", "(empty)", "--peer-tls needs the cluster's CA");
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
  }
  switch (files.client_auth) {
    case TlsClientAuth::None:
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      break;
    case TlsClientAuth::Want:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      break;
    case TlsClientAuth::Need:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  return ctx;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_server_context(const TlsFiles& files,
                                                              std::int64_t now_s) {
  return build_context(files, now_s, Role::Server);
}

Result<std::shared_ptr<ssl::context>> make_tls_peer_context(const TlsFiles& files,
                                                            std::int64_t now_s) {
  return build_context(files, now_s, Role::Peer);
}

std::string x509_subject_rfc2253(const x509_st* cert) {
  const X509_NAME* name = X509_get_subject_name(cert);
  if (name == nullptr) return "";
  BioPtr out(BIO_new(BIO_s_mem()));
  // RFC 2253 as OpenSSL writes it, but UTF-8 left as it is (the Java
  // provider ZooKeeper uses does not escape it either).
  const unsigned long flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
  if (X509_NAME_print_ex(out.get(), name, 0, flags) < 0) return "";
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::optional<std::string> tls_peer_identity(ssl_st* s) {
  if (SSL_get_verify_result(s) != X509_V_OK) return std::nullopt;
  X509Ptr cert(SSL_get1_peer_certificate(s));
  if (!cert) return std::nullopt;
  std::string subject = x509_subject_rfc2253(cert.get());
  if (subject.empty()) return std::nullopt;
  return subject;
}

Result<std::unique_ptr<TlsServer>> TlsServer::create(TlsFiles files, bool peers,
                                                     std::int64_t now_s) {
  std::unique_ptr<TlsServer> s(new TlsServer(std::move(files), peers));
  COORD_RETURN_IF_ERROR(s->reload(now_s));
  return s;
}

Status TlsServer::reload(std::int64_t now_s) {
  auto ctx = make_tls_server_context(files_, now_s);
  if (!ctx.ok()) return ctx.status();
  std::shared_ptr<ssl::context> peer;
  if (peers_) {
    auto p = make_tls_peer_context(files_, now_s);
    if (!p.ok()) return p.status();
    peer = std::move(p).value();
  }
  std::lock_guard lock(mu_);
  current_ = std::move(ctx).value();
  peer_ = std::move(peer);
  return Status();
}

}  // namespace coord::io
