// The peer handshake's bytes and proofs, as docs/formats/peer-handshake.md
// specifies them.

#include "coord/io/peer_handshake.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace coord::io::peer_handshake {
namespace {

Nonce nonce_of(std::uint8_t b) {
  Nonce n{};
  n.fill(b);
  return n;
}

TEST(PeerHandshake, HelloHasTheDocumentedBytes) {
  Hello h;
  h.authenticated = true;
  h.dialer = NodeId(1);
  h.acceptor = NodeId(0x0203);
  h.nonce = nonce_of(0xAA);
  h.cluster_id = "prod";
  const std::string bytes = encode(h);
  std::string want("CDPR\x01\x01", 6);
  want += std::string("\x37\x00", 2);  // body: 51 + 4 bytes
  want += std::string("\x01\x00", 2);
  want += std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8);
  want += std::string("\x03\x02\x00\x00\x00\x00\x00\x00", 8);
  want += std::string(32, '\xAA');
  want += std::string("\x04prod", 5);
  EXPECT_EQ(bytes, want);
  auto back = decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  const auto& d = std::get<Hello>(*back);
  EXPECT_TRUE(d.authenticated);
  EXPECT_EQ(d.dialer, NodeId(1));
  EXPECT_EQ(d.acceptor, NodeId(0x0203));
  EXPECT_EQ(d.nonce, h.nonce);
  EXPECT_EQ(d.cluster_id, "prod");
}

TEST(PeerHandshake, EveryMessageRoundTrips) {
  Challenge c;
  c.authenticated = false;
  c.acceptor = NodeId(3);
  c.dialer = NodeId(2);
  c.nonce = nonce_of(7);
  c.proof = nonce_of(9);
  auto dc = decode(encode(c));
  ASSERT_TRUE(dc.ok());
  EXPECT_EQ(std::get<Challenge>(*dc).acceptor, NodeId(3));
  EXPECT_EQ(std::get<Challenge>(*dc).proof, c.proof);
  EXPECT_EQ(encode(c).size(), header_bytes + 82);

  auto dp = decode(encode(ProofMessage{nonce_of(5)}));
  ASSERT_TRUE(dp.ok());
  EXPECT_EQ(std::get<ProofMessage>(*dp).proof, nonce_of(5));

  EXPECT_EQ(encode(Welcome{}), std::string("CDPR\x01\x04\x00\x00", 8));
  auto dw = decode(encode(Welcome{}));
  ASSERT_TRUE(dw.ok());
  EXPECT_TRUE(std::holds_alternative<Welcome>(*dw));

  EXPECT_EQ(encode(Refuse{Refusal::BadProof}), std::string("CDPR\x01\x05\x01\x00\x07", 9));
  auto dr = decode(encode(Refuse{Refusal::BadProof}));
  ASSERT_TRUE(dr.ok());
  EXPECT_EQ(std::get<Refuse>(*dr).reason, Refusal::BadProof);
}

TEST(PeerHandshake, ScanTellsStrangersAndPartsApart) {
  EXPECT_EQ(scan("GET / HTTP/1.1\r\n").state, Scan::State::BadMagic);
  EXPECT_EQ(scan("CX").state, Scan::State::BadMagic);
  EXPECT_EQ(scan("CD").state, Scan::State::Incomplete);
  EXPECT_EQ(scan(std::string("CDPR\x02\x01\x00\x00", 8)).state, Scan::State::BadVersion);
  EXPECT_EQ(scan(std::string("CDPR\x01\x01\x01\x02", 8)).state, Scan::State::BadLength);
  const std::string w = encode(Welcome{}) + "trailing";
  const Scan s = scan(w);
  EXPECT_EQ(s.state, Scan::State::Ready);
  EXPECT_EQ(s.size, header_bytes);
  const std::string hello = encode(Hello{false, NodeId(1), NodeId(2), {}, "c"});
  EXPECT_EQ(scan(hello.substr(0, hello.size() - 1)).state, Scan::State::Incomplete);
}

TEST(PeerHandshake, DecodeRefusesMalformedMessages) {
  std::string hello = encode(Hello{false, NodeId(1), NodeId(2), {}, "c"});
  std::string bad_flags = hello;
  bad_flags[header_bytes] = 2;
  EXPECT_FALSE(decode(bad_flags).ok());
  std::string bad_len = hello;
  bad_len[header_bytes + 50] = 9;  // cluster id length past the body
  EXPECT_FALSE(decode(bad_len).ok());
  EXPECT_FALSE(decode(std::string("CDPR\x01\x05\x01\x00\x00", 9)).ok());  // refusal 0
  EXPECT_FALSE(decode(std::string("CDPR\x01\x09\x00\x00", 8)).ok());      // kind 9
  EXPECT_FALSE(decode(std::string("CDPR\x01\x04\x01\x00\x00", 9)).ok());  // welcome with a body
  EXPECT_FALSE(decode(hello + "x").ok());
}

TEST(PeerHandshake, ProofIsHmacSha256OverTheDocumentedInput) {
  const std::string secret = "0123456789abcdef-secret";
  const Nonce nd = nonce_of(1);
  const Nonce na = nonce_of(2);
  std::string input("coord peer handshake v1: dialer");
  input.push_back('\0');
  input += std::string("\x04prod", 5);
  input += std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8);
  input += std::string("\x02\x00\x00\x00\x00\x00\x00\x00", 8);
  input += std::string(32, '\x01');
  input += std::string(32, '\x02');
  Proof want{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), want.data(), &len);
  EXPECT_EQ(prove(Role::Dialer, secret, "prod", NodeId(1), NodeId(2), nd, na), want);
}

TEST(PeerHandshake, ProofsDependOnEveryInput) {
  const std::string s = "0123456789abcdef";
  const Nonce a = nonce_of(1);
  const Nonce b = nonce_of(2);
  const Proof base = prove(Role::Dialer, s, "c", NodeId(1), NodeId(2), a, b);
  EXPECT_TRUE(same_proof(base, prove(Role::Dialer, s, "c", NodeId(1), NodeId(2), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Acceptor, s, "c", NodeId(1), NodeId(2), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s + "x", "c", NodeId(1), NodeId(2), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s, "d", NodeId(1), NodeId(2), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s, "c", NodeId(3), NodeId(2), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s, "c", NodeId(1), NodeId(3), a, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s, "c", NodeId(1), NodeId(2), b, b)));
  EXPECT_FALSE(same_proof(base, prove(Role::Dialer, s, "c", NodeId(1), NodeId(2), a, a)));
  // Without a secret the proof still binds the transcript.
  EXPECT_FALSE(same_proof(prove(Role::Dialer, "", "c", NodeId(1), NodeId(2), a, b),
                          prove(Role::Dialer, "", "c", NodeId(1), NodeId(2), a, a)));
}

TEST(PeerHandshake, NoncesAreFresh) {
  EXPECT_NE(fresh_nonce(), fresh_nonce());
}

}  // namespace
}  // namespace coord::io::peer_handshake
