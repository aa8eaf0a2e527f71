// The TLS settings of a server: the flag combinations it refuses, the
// certificate files it refuses to start (or reload) with, and the subject
// string a client certificate becomes as an x509 identity. Certificates
// are made here, in memory, and written to a temporary directory.

#include "coord/io/tls.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace coord::io {
namespace {

namespace fs = std::filesystem;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

constexpr std::int64_t kDay = 86'400;
constexpr std::int64_t kNotBefore = 1'700'000'000;  // 2023-11-14
constexpr std::int64_t kNotAfter = kNotBefore + 30 * kDay;

Key new_key() {
  return Key(EVP_EC_gen("P-256"));
}

void add_entry(X509_NAME* name, const char* field, const std::string& value) {
  ASSERT_EQ(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.data()),
                                       static_cast<int>(value.size()), -1, 0),
            1);
}

// A self-signed certificate valid from kNotBefore to kNotAfter, its
// subject given in the order of the entries (least specific first).
Cert self_signed(EVP_PKEY* key, std::initializer_list<std::pair<const char*, std::string>> dn) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(kNotBefore));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(kNotAfter));
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : dn)
    add_entry(name, field, value);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key);
  X509_sign(cert.get(), key, EVP_sha256());
  return cert;
}

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("coord-tls-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    key_ = new_key();
    other_key_ = new_key();
    cert_ = self_signed(key_.get(), {{"CN", "coordd"}});
    files_.cert_file = write_cert("cert.pem", cert_.get());
    files_.key_file = write_key("key.pem", key_.get());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_cert(const std::string& name, X509* cert) {
    const std::string path = (dir_ / name).string();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    PEM_write_X509(f, cert);
    std::fclose(f);
    return path;
  }
  std::string write_key(const std::string& name, EVP_PKEY* key) {
    const std::string path = (dir_ / name).string();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return path;
  }
  std::string error_of(const TlsFiles& files, std::int64_t now_s) {
    auto ctx = make_tls_server_context(files, now_s);
    EXPECT_FALSE(ctx.ok());
    return ctx.ok() ? std::string() : ctx.status().message();
  }

  fs::path dir_;
  Key key_, other_key_;
  Cert cert_;
  TlsFiles files_;
  const std::int64_t valid_now_ = kNotBefore + kDay;
};

TEST(TlsClientAuth, ParsesTheThreeChoices) {
  EXPECT_EQ(parse_tls_client_auth("none").value(), TlsClientAuth::None);
  EXPECT_EQ(parse_tls_client_auth("want").value(), TlsClientAuth::Want);
  EXPECT_EQ(parse_tls_client_auth("need").value(), TlsClientAuth::Need);
  auto bad = parse_tls_client_auth("required");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), ErrorCode::BadArguments);
  EXPECT_NE(bad.status().message().find("none, want or need"), std::string::npos);
}

TEST(TlsOptionsCheck, RefusesWhatCannotWork) {
  TlsOptions o;
  EXPECT_TRUE(check_tls_options(o, 2181).ok());  // no TLS at all

  o.files.cert_file = "c.pem";
  o.files.key_file = "k.pem";
  auto unused = check_tls_options(o, 2181);
  EXPECT_EQ(unused.code(), ErrorCode::BadArguments);
  EXPECT_NE(unused.message().find("--secure-client-port, --http-tls or --peer-tls"),
            std::string::npos);

  o.secure_client_port = 2281;
  EXPECT_TRUE(check_tls_options(o, 2181).ok());
  EXPECT_TRUE(check_tls_options(o, 0).ok());  // no plain port
  EXPECT_EQ(check_tls_options(o, 2281).code(), ErrorCode::BadArguments);

  o.files.client_auth = TlsClientAuth::Need;
  auto no_ca = check_tls_options(o, 2181);
  EXPECT_NE(no_ca.message().find("--tls-ca-file"), std::string::npos);
  o.files.ca_file = "ca.pem";
  EXPECT_TRUE(check_tls_options(o, 2181).ok());

  TlsOptions peers_only;
  peers_only.peer_tls = true;
  peers_only.files = o.files;
  peers_only.files.ca_file.clear();
  peers_only.files.client_auth = TlsClientAuth::None;
  EXPECT_NE(check_tls_options(peers_only, 2181).message().find("--peer-tls needs --tls-ca-file"),
            std::string::npos);

  TlsOptions https_only;
  https_only.http_tls = true;
  auto no_cert = check_tls_options(https_only, 2181);
  EXPECT_NE(no_cert.message().find("--tls-cert-file and --tls-key-file"), std::string::npos);
}

TEST_F(TlsFilesTest, BuildsAContextFromValidFiles) {
  auto ctx = make_tls_server_context(files_, valid_now_);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_NE(*ctx, nullptr);
}

TEST_F(TlsFilesTest, RefusesAnExpiredOrNotYetValidCertificate) {
  const std::string expired = error_of(files_, kNotAfter + 1);
  EXPECT_NE(expired.find("expired on"), std::string::npos) << expired;
  EXPECT_NE(expired.find(files_.cert_file), std::string::npos) << expired;
  const std::string early = error_of(files_, kNotBefore - 1);
  EXPECT_NE(early.find("not valid before"), std::string::npos) << early;
}

TEST_F(TlsFilesTest, RefusesAKeyOfAnotherCertificate) {
  TlsFiles f = files_;
  f.key_file = write_key("other.pem", other_key_.get());
  const std::string why = error_of(f, valid_now_);
  EXPECT_NE(why.find("does not match the certificate"), std::string::npos) << why;
}

TEST_F(TlsFilesTest, RefusesMissingAndMalformedFiles) {
  TlsFiles f = files_;
  f.cert_file = (dir_ / "missing.pem").string();
  std::string why = error_of(f, valid_now_);
  EXPECT_NE(why.find(f.cert_file), std::string::npos) << why;
  EXPECT_NE(why.find("No such file"), std::string::npos) << why;

  f = files_;
  f.cert_file = files_.key_file;  // a key where the certificate goes
  why = error_of(f, valid_now_);
  EXPECT_NE(why.find("no PEM certificate"), std::string::npos) << why;

  f = files_;
  f.ca_file = files_.key_file;  // a CA file without a certificate
  why = error_of(f, valid_now_);
  EXPECT_NE(why.find("--tls-ca-file"), std::string::npos) << why;
}

TEST_F(TlsFilesTest, AFailedReloadKeepsTheContext) {
  auto server = TlsServer::create(files_, /*peers=*/false, valid_now_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto before = (*server)->current();
  // Still the same files, but now past their validity.
  EXPECT_FALSE((*server)->reload(kNotAfter + 1).ok());
  EXPECT_EQ((*server)->current(), before);
  EXPECT_TRUE((*server)->reload(valid_now_).ok());
  EXPECT_NE((*server)->current(), before);
}

TEST(X509Subject, IsRfc2253MostSpecificFirst) {
  Key key = new_key();
  Cert plain = self_signed(key.get(), {{"C", "US"}, {"O", "coord"}, {"CN", "alice"}});
  EXPECT_EQ(x509_subject_rfc2253(plain.get()), "CN=alice,O=coord,C=US");
}

TEST(X509Subject, EscapesSpecialCharactersAndKeepsUtf8) {
  Key key = new_key();
  Cert special = self_signed(key.get(), {{"O", "a,b+c"}, {"CN", " lead\"q"}});
  EXPECT_EQ(x509_subject_rfc2253(special.get()), "CN=\\ lead\\\"q,O=a\\,b\\+c");
  Cert utf8 = self_signed(key.get(), {{"CN", "J\xc3\xa9r\xc3\xb4me"}});
  EXPECT_EQ(x509_subject_rfc2253(utf8.get()), "CN=J\xc3\xa9r\xc3\xb4me");
}

}  // namespace
}  // namespace coord::io
