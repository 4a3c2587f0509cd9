// JWT verification with keys made in-process by OpenSSL: RS256 and ES256 (PEM and JWKS), HS256,
// the claim checks, and the attacks a verifier must refuse (alg none, alg confusion, a kid that
// names no key, tampering).
#include "ringcast/profiles/jwt_verifier.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "ringcast/profiles/base64url.h"
#include "ringcast/profiles/jwt_keys.h"

using namespace ringcast::profiles;

namespace {

constexpr int64_t kNow = 1700000000;

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

using Pkey = std::shared_ptr<EVP_PKEY>;

Pkey rsa_key(unsigned bits = 2048) {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)), EVP_PKEY_free);
}
Pkey ec_key(const char* curve = "P-256") {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), EVP_PKEY_free);
}

// Made once: RSA key generation takes a while.
const Pkey& rsa_a() {
  static Pkey k = rsa_key();
  return k;
}
const Pkey& rsa_b() {
  static Pkey k = rsa_key();
  return k;
}
const Pkey& ec_a() {
  static Pkey k = ec_key();
  return k;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

std::string public_pem(const Pkey& k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k.get());
  return bio_text(bio);
}

std::string private_pem(const Pkey& k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return bio_text(bio);
}

// "-----BEGIN RSA PUBLIC KEY-----" (PKCS#1).
std::string pkcs1_pem(const Pkey& k) {
  BIO* bio = BIO_new(BIO_s_mem());
  OSSL_ENCODER_CTX* ctx =
      OSSL_ENCODER_CTX_new_for_pkey(k.get(), EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", nullptr);
  OSSL_ENCODER_to_bio(ctx, bio);
  OSSL_ENCODER_CTX_free(ctx);
  return bio_text(bio);
}

std::string bn_b64(const BIGNUM* bn, int pad = 0) {
  std::string bytes(static_cast<size_t>(pad ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  return base64url_encode(bytes);
}

std::string jwk(const Pkey& k, const std::string& kid, const std::string& extra = "") {
  if (EVP_PKEY_is_a(k.get(), "RSA")) {
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E, &e);
    std::string out = R"({"kty":"RSA","kid":")" + kid + R"(","n":")" + bn_b64(n) + R"(","e":")" +
                      bn_b64(e) + "\"" + extra + "}";
    BN_free(n);
    BN_free(e);
    return out;
  }
  BIGNUM *x = nullptr, *y = nullptr;
  EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
  EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
  std::string out = R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" + bn_b64(x, 32) +
                    R"(","y":")" + bn_b64(y, 32) + "\"" + extra + "}";
  BN_free(x);
  BN_free(y);
  return out;
}

// A signature of `input` in JOSE form: PKCS#1 v1.5 for RSA, r || s for EC (or DER if asked).
std::string sign_pkey(const Pkey& k, const std::string& input, bool der = false) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k.get());
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!EVP_PKEY_is_a(k.get(), "EC") || der) return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string rs(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(rs.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(rs.data()) + 32, 32);
  ECDSA_SIG_free(es);
  return rs;
}

std::string hmac(const std::string& secret, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string signing_input(const std::string& header, const std::string& payload) {
  return base64url_encode(header) + "." + base64url_encode(payload);
}

std::string token_pkey(const Pkey& k, const std::string& header, const std::string& payload,
                       bool der = false) {
  std::string in = signing_input(header, payload);
  return in + "." + base64url_encode(sign_pkey(k, in, der));
}

std::string token_hs(const std::string& secret, const std::string& header,
                     const std::string& payload) {
  std::string in = signing_input(header, payload);
  return in + "." + base64url_encode(hmac(secret, in));
}

JwtVerifier verifier_for(const std::string& key_file, JwtPolicy policy = {}) {
  JwtKeySet keys;
  keys.add_key_file_text(key_file);
  return JwtVerifier(std::move(keys), std::move(policy));
}

// [profiles.gamechat] hs256_secret's verifier: no audience check, no leeway.
JwtVerifier hs256(const std::string& secret) {
  JwtKeySet keys;
  if (!secret.empty()) keys.add_hs256_secret(secret);
  JwtPolicy p;
  p.check_audience = false;
  return JwtVerifier(std::move(keys), p);
}

JwtResult check(const JwtVerifier& v, const std::string& token, int64_t now = kNow) {
  JwtClaims c;
  return v.verify(token, now, c);
}

const std::string kRs = R"({"alg":"RS256","typ":"JWT"})";
const std::string kEs = R"({"alg":"ES256","typ":"JWT"})";
const std::string kHs = R"({"alg":"HS256","typ":"JWT"})";

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
  EXPECT_EQ(hs256("your-256-bit-secret").verify(kJwtIo, kNow, c), JwtResult::kOk);
  EXPECT_EQ(c.sub, "1234567890");
  EXPECT_FALSE(c.nickname);  // a `name` claim is not a nickname
  EXPECT_FALSE(c.valid_until);
  EXPECT_EQ(check(hs256("your-256-bit-secreT"), kJwtIo), JwtResult::kInvalid);
  EXPECT_EQ(check(hs256(""), kJwtIo), JwtResult::kInvalid);  // no key at all
}

TEST(JwtHs256, ExpAndNbf) {
  JwtClaims c;
  auto v = hs256("k");
  EXPECT_EQ(v.verify(kTimed, 1500000000, c), JwtResult::kOk);
  EXPECT_EQ(c.sub, "HL1");
  ASSERT_TRUE(c.nickname);
  EXPECT_EQ(*c.nickname, "Ann");
  ASSERT_TRUE(c.valid_until);
  EXPECT_EQ(*c.valid_until, 2000000000.0);
  EXPECT_EQ(check(v, kTimed, 1999999999), JwtResult::kOk);
  EXPECT_EQ(check(v, kTimed, 2000000000), JwtResult::kInvalid);  // expired at exp
  EXPECT_EQ(check(v, kTimed, 1000000000), JwtResult::kOk);
  EXPECT_EQ(check(v, kTimed, 999999999), JwtResult::kInvalid);  // before nbf
}

TEST(JwtHs256, Malformed) {
  auto v = hs256("k");
  std::string t = kTimed;
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  EXPECT_EQ(check(v, ""), JwtResult::kMalformed);
  EXPECT_EQ(check(v, "bad-token"), JwtResult::kMalformed);
  EXPECT_EQ(check(v, t.substr(0, d2)), JwtResult::kMalformed);
  EXPECT_EQ(check(v, t + ".x"), JwtResult::kMalformed);
  EXPECT_EQ(check(v, t.substr(0, d1) + ".!!" + t.substr(d2)), JwtResult::kMalformed);
  EXPECT_EQ(check(v, t.substr(0, d1) + ".e30" + t.substr(d2) + "*"),
            JwtResult::kMalformed);  // signature not base64url
  // a payload that is JSON but not an object
  EXPECT_EQ(check(v, t.substr(0, d1) + "." + base64url_encode("[1]") + t.substr(d2)),
            JwtResult::kMalformed);
  // parseable, but signed for another payload
  EXPECT_EQ(check(v, t.substr(0, d1) + ".e30" + t.substr(d2)), JwtResult::kInvalid);
}

// PyJWT parses with json.loads: a repeated claim or header field counts with its last value.
TEST(JwtHs256, RepeatedKeysTakeTheLastValue) {
  JwtClaims c;
  auto v = hs256("k");
  const std::string hs = R"({"alg":"HS256"})";
  EXPECT_EQ(
      v.verify(token_hs("k", hs, R"({"sub":"first","sub":"last","nickname":"A","nickname":"B"})"),
               1500000000, c),
      JwtResult::kOk);
  EXPECT_EQ(c.sub, "last");
  ASSERT_TRUE(c.nickname);
  EXPECT_EQ(*c.nickname, "B");
  // An expiry given twice: the later (past) one decides.
  EXPECT_EQ(check(v, token_hs("k", hs, R"({"sub":"u","exp":2000000000,"exp":1})"), 1500000000),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_hs("k", hs, R"({"sub":"u","exp":1,"exp":2000000000})"), 1500000000),
            JwtResult::kOk);
  // The header's alg: the last one is what counts.
  EXPECT_EQ(
      check(v, token_hs("k", R"({"alg":"HS256","alg":"none"})", R"({"sub":"u"})"), 1500000000),
      JwtResult::kInvalid);
}

TEST(JwtRs256, ValidTokenFromPem) {
  auto v = verifier_for(public_pem(rsa_a()), {{"heavenland-api"}, true, "", 60});
  JwtClaims c;
  std::string t = token_pkey(
      rsa_a(), kRs,
      R"({"sub":"HL365393213667","aud":"heavenland-api","exp":1700000600,"nickname":"Hero"})");
  ASSERT_EQ(v.verify(t, kNow, c), JwtResult::kOk);
  EXPECT_EQ(c.sub, "HL365393213667");
  EXPECT_EQ(c.nickname, "Hero");
  EXPECT_EQ(c.exp, 1700000600.0);
  EXPECT_EQ(c.valid_until, 1700000660.0);
  // Another RSA key's signature, and a tampered payload or signature, are refused.
  EXPECT_EQ(check(v, token_pkey(rsa_b(), kRs, R"({"sub":"x","aud":"heavenland-api"})")),
            JwtResult::kInvalid);
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  std::string forged = t.substr(0, d1) + "." +
                       base64url_encode(R"({"sub":"HL1","aud":"heavenland-api"})") + t.substr(d2);
  EXPECT_EQ(check(v, forged), JwtResult::kInvalid);
  std::string flipped = t;
  flipped[d2 + 5] = flipped[d2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(check(v, flipped), JwtResult::kInvalid);
  EXPECT_EQ(check(v, t.substr(0, d2 + 1)), JwtResult::kInvalid);  // no signature
}

TEST(JwtRs256, Pkcs1PemLoads) {
  auto v = verifier_for(pkcs1_pem(rsa_a()));
  EXPECT_EQ(check(v, token_pkey(rsa_a(), kRs, R"({"sub":"u"})")), JwtResult::kOk);
}

TEST(JwtEs256, ValidTokenAndSignatureForm) {
  auto v = verifier_for(public_pem(ec_a()));
  JwtClaims c;
  ASSERT_EQ(v.verify(token_pkey(ec_a(), kEs, R"({"sub":"e1","nickname":"Eve"})"), kNow, c),
            JwtResult::kOk);
  EXPECT_EQ(c.sub, "e1");
  // JOSE wants r || s; a DER signature (what OpenSSL produces) is not an ES256 signature.
  EXPECT_EQ(check(v, token_pkey(ec_a(), kEs, R"({"sub":"e1"})", true)), JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_pkey(ec_key(), kEs, R"({"sub":"e1"})")), JwtResult::kInvalid);
}

TEST(JwtClaimsCheck, ExpiredAndNotYetValidWithLeeway) {
  auto v = verifier_for(public_pem(ec_a()), {{}, true, "", 60});
  auto tok = [](const std::string& claims) { return token_pkey(ec_a(), kEs, claims); };
  EXPECT_EQ(check(v, tok(R"({"sub":"u","exp":1699999950})")), JwtResult::kOk);  // within leeway
  EXPECT_EQ(check(v, tok(R"({"sub":"u","exp":1699999940})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","exp":"soon"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","nbf":1700000050})")), JwtResult::kOk);  // within leeway
  EXPECT_EQ(check(v, tok(R"({"sub":"u","nbf":1700000061})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"nickname":"no sub"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":""})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":7})")), JwtResult::kInvalid);
}

TEST(JwtClaimsCheck, AudienceAndIssuer) {
  auto tok = [](const std::string& claims) { return token_pkey(rsa_a(), kRs, claims); };
  auto v = verifier_for(public_pem(rsa_a()), {{"heavenland-api", "other"}, true, "https://id", 0});
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":"heavenland-api","iss":"https://id"})")),
            JwtResult::kOk);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":["x","other"],"iss":"https://id"})")), JwtResult::kOk);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":"heavenland","iss":"https://id"})")),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":["x"],"iss":"https://id"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","iss":"https://id"})")), JwtResult::kInvalid);  // no aud
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":"other","iss":"https://evil"})")),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, tok(R"({"sub":"u","aud":"other"})")), JwtResult::kInvalid);  // no iss
  // No audience configured: a token meant for some audience is not for us (RFC 7519 4.1.3).
  auto open = verifier_for(public_pem(rsa_a()));
  EXPECT_EQ(check(open, tok(R"({"sub":"u","aud":"heavenland-api"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(open, tok(R"({"sub":"u"})")), JwtResult::kOk);
}

TEST(JwtAttacks, AlgNone) {
  JwtKeySet keys;
  keys.add_key_file_text(public_pem(rsa_a()));
  keys.add_hs256_secret("k");
  JwtVerifier v(std::move(keys), {});
  std::string in = signing_input(R"({"alg":"none"})", R"({"sub":"admin"})");
  EXPECT_EQ(check(v, in + "."), JwtResult::kInvalid);
  EXPECT_EQ(check(v, signing_input(R"({"alg":"None"})", R"({"sub":"admin"})") + "."),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, signing_input(R"({"sub":"admin"})", R"({"sub":"admin"})") + "."),
            JwtResult::kInvalid);  // no alg
}

TEST(JwtAttacks, AlgConfusion) {
  // HS256 "signed" with the RSA public key's PEM text as the secret: the classic confusion.
  std::string pem = public_pem(rsa_a());
  auto v = verifier_for(pem);
  EXPECT_EQ(check(v, token_hs(pem, kHs, R"({"sub":"admin"})")), JwtResult::kInvalid);
  // A token claiming RS256 is never checked with an EC key, nor ES256 with an RSA key.
  auto ec = verifier_for(public_pem(ec_a()));
  EXPECT_EQ(check(ec, token_pkey(rsa_a(), kRs, R"({"sub":"u"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(ec, token_pkey(ec_a(), kRs, R"({"sub":"u"})")), JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_pkey(rsa_a(), kEs, R"({"sub":"u"})")), JwtResult::kInvalid);
  // RS512/PS256 are not algorithms any configured key verifies.
  EXPECT_EQ(check(v, token_pkey(rsa_a(), R"({"alg":"RS512"})", R"({"sub":"u"})")),
            JwtResult::kInvalid);
  // A critical header extension we do not know.
  EXPECT_EQ(
      check(v, token_pkey(rsa_a(), R"({"alg":"RS256","crit":["x"],"x":1})", R"({"sub":"u"})")),
      JwtResult::kInvalid);
}

TEST(JwtJwks, TwoKeysSelectedByKid) {
  std::string jwks = "{\"keys\":[" + jwk(rsa_a(), "rsa-1", R"(,"use":"sig","alg":"RS256")") + "," +
                     jwk(ec_a(), "ec-1") + "]}";
  auto v = verifier_for(jwks);
  EXPECT_EQ(check(v, token_pkey(rsa_a(), R"({"alg":"RS256","kid":"rsa-1"})", R"({"sub":"a"})")),
            JwtResult::kOk);
  EXPECT_EQ(check(v, token_pkey(ec_a(), R"({"alg":"ES256","kid":"ec-1"})", R"({"sub":"b"})")),
            JwtResult::kOk);
  // No kid: the keys of that alg are tried.
  EXPECT_EQ(check(v, token_pkey(ec_a(), kEs, R"({"sub":"b"})")), JwtResult::kOk);
  // A kid that names no key, or another key, is refused.
  EXPECT_EQ(check(v, token_pkey(rsa_a(), R"({"alg":"RS256","kid":"rsa-2"})", R"({"sub":"a"})")),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_pkey(rsa_a(), R"({"alg":"RS256","kid":"ec-1"})", R"({"sub":"a"})")),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_pkey(rsa_b(), R"({"alg":"RS256","kid":"rsa-1"})", R"({"sub":"a"})")),
            JwtResult::kInvalid);
  EXPECT_EQ(check(v, token_pkey(rsa_a(), R"({"alg":"RS256","kid":5})", R"({"sub":"a"})")),
            JwtResult::kInvalid);
}

TEST(JwtJwks, SkipsKeysOfOtherUsesAndTypes) {
  std::string jwks = "{\"keys\":[" + jwk(rsa_b(), "enc", R"(,"use":"enc")") + "," +
                     R"({"kty":"oct","k":"c2VjcmV0"},)" + jwk(rsa_a(), "sig") + "]}";
  auto v = verifier_for(jwks);
  EXPECT_EQ(check(v, token_pkey(rsa_a(), kRs, R"({"sub":"a"})")), JwtResult::kOk);
  EXPECT_EQ(check(v, token_pkey(rsa_b(), kRs, R"({"sub":"a"})")), JwtResult::kInvalid);
}

TEST(JwtKeys, UnusableKeyFilesAreErrors) {
  JwtKeySet keys;
  EXPECT_THROW(keys.add_key_file_text("not a key"), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(private_pem(ec_a())), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(public_pem(rsa_key(1024))), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(public_pem(ec_key("P-384"))), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(R"({"keys":[]})"), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(R"({"keys":"x"})"), JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text("{\"keys\":[" + jwk(rsa_a(), "e", R"(,"use":"enc")") + "]}"),
               JwtKeyError);
  EXPECT_THROW(keys.add_key_file_text(R"({"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]})"),
               JwtKeyError);
  // An EC point that is not on the curve.
  std::string x(32, '\x01'), y(32, '\x02');
  EXPECT_THROW(
      keys.add_key_file_text(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + base64url_encode(x) +
                             R"(","y":")" + base64url_encode(y) + "\"}]}"),
      JwtKeyError);
  EXPECT_THROW(keys.add_hs256_secret(""), JwtKeyError);
  EXPECT_TRUE(keys.empty());
}
