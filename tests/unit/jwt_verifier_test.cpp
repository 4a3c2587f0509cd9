#include "ringcast/profiles/jwt_hs256.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

using ringcast::profiles::base64url_decode;
using ringcast::profiles::base64url_encode;
using ringcast::profiles::JwtClaims;
using ringcast::profiles::JwtResult;
using ringcast::profiles::verify_hs256;

namespace {

// jwt.io's example token (secret "your-256-bit-secret"), and one with sub/nickname/exp/nbf
// (secret "k", exp 2000000000, nbf 1000000000), both signed by Python's hmac module.
constexpr const char* kJwtIo =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ij"
    "oxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
constexpr const char* kTimed =
    "eyJhbGciOiJIUzI1NiJ9."
    "eyJzdWIiOiJITDEiLCJuaWNrbmFtZSI6IkFubiIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxMD"
    "AwMDAwMDAwfQ.a7By7fVguGobAOTaSmzJjbaBL4NfZfQ7AN92jyisLVU";

// A token for header and payload JSON texts as given (repeated keys kept), signed with `secret`.
std::string sign(const std::string& header, const std::string& payload, const std::string& secret) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

}  // namespace

TEST(Base64Url, RoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd"}) {
    auto enc = base64url_encode(s);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(*base64url_decode("Zm8="), "fo");
  EXPECT_FALSE(base64url_decode("Zm8+"));  // '+' is plain base64, not base64url
  EXPECT_FALSE(base64url_decode("Z"));     // impossible length
  EXPECT_FALSE(base64url_decode("Zm 8"));
}

TEST(JwtHs256, JwtIoExample) {
  JwtClaims c;
  EXPECT_EQ(verify_hs256(kJwtIo, "your-256-bit-secret", 1700000000, c), JwtResult::kOk);
  EXPECT_EQ(c.sub, "1234567890");
  EXPECT_FALSE(c.nickname);  // a `name` claim is not a nickname
  EXPECT_EQ(verify_hs256(kJwtIo, "your-256-bit-secreT", 1700000000, c), JwtResult::kInvalid);
  EXPECT_EQ(verify_hs256(kJwtIo, "", 1700000000, c), JwtResult::kInvalid);
}

TEST(JwtHs256, ExpAndNbf) {
  JwtClaims c;
  EXPECT_EQ(verify_hs256(kTimed, "k", 1500000000, c), JwtResult::kOk);
  EXPECT_EQ(c.sub, "HL1");
  ASSERT_TRUE(c.nickname);
  EXPECT_EQ(*c.nickname, "Ann");
  EXPECT_EQ(verify_hs256(kTimed, "k", 1999999999, c), JwtResult::kOk);
  EXPECT_EQ(verify_hs256(kTimed, "k", 2000000000, c), JwtResult::kInvalid);  // expired at exp
  EXPECT_EQ(verify_hs256(kTimed, "k", 1000000000, c), JwtResult::kOk);
  EXPECT_EQ(verify_hs256(kTimed, "k", 999999999, c), JwtResult::kInvalid);  // before nbf
}

TEST(JwtHs256, Malformed) {
  JwtClaims c;
  std::string t = kTimed;
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  EXPECT_EQ(verify_hs256("", "k", 0, c), JwtResult::kMalformed);
  EXPECT_EQ(verify_hs256("abc", "k", 0, c), JwtResult::kMalformed);
  EXPECT_EQ(verify_hs256(t.substr(0, d2), "k", 0, c), JwtResult::kMalformed);
  EXPECT_EQ(verify_hs256(t + ".x", "k", 0, c), JwtResult::kMalformed);
  EXPECT_EQ(verify_hs256(t.substr(0, d1) + ".!!" + t.substr(d2), "k", 0, c), JwtResult::kMalformed);
  EXPECT_EQ(verify_hs256(t.substr(0, d1) + ".e30" + t.substr(d2) + "*", "k", 0, c),
            JwtResult::kMalformed);  // signature not base64url
  // a payload that is JSON but not an object
  EXPECT_EQ(verify_hs256(t.substr(0, d1) + "." + base64url_encode("[1]") + t.substr(d2), "k", 0, c),
            JwtResult::kMalformed);
  // parseable, but signed for another payload
  EXPECT_EQ(verify_hs256(t.substr(0, d1) + ".e30" + t.substr(d2), "k", 0, c), JwtResult::kInvalid);
}

// PyJWT parses with json.loads: a repeated claim or header field counts with its last value.
TEST(JwtHs256, RepeatedKeysTakeTheLastValue) {
  JwtClaims c;
  const std::string hs = R"({"alg":"HS256"})";
  EXPECT_EQ(
      verify_hs256(sign(hs, R"({"sub":"first","sub":"last","nickname":"A","nickname":"B"})", "k"),
                   "k", 1500000000, c),
      JwtResult::kOk);
  EXPECT_EQ(c.sub, "last");
  ASSERT_TRUE(c.nickname);
  EXPECT_EQ(*c.nickname, "B");
  // An expiry given twice: the later (past) one decides.
  EXPECT_EQ(
      verify_hs256(sign(hs, R"({"sub":"u","exp":2000000000,"exp":1})", "k"), "k", 1500000000, c),
      JwtResult::kInvalid);
  EXPECT_EQ(
      verify_hs256(sign(hs, R"({"sub":"u","exp":1,"exp":2000000000})", "k"), "k", 1500000000, c),
      JwtResult::kOk);
  // The header's alg: the last one is what counts.
  EXPECT_EQ(verify_hs256(sign(R"({"alg":"HS256","alg":"none"})", R"({"sub":"u"})", "k"), "k",
                         1500000000, c),
            JwtResult::kInvalid);
}
