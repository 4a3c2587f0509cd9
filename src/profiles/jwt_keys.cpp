#include "ringcast/profiles/jwt_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <rapidjson/document.h>

#include "ringcast/profiles/base64url.h"
#include "ringcast/profiles/python_json.h"

namespace ringcast::profiles {

namespace {

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* p) {
  return std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free);
}

// The one algorithm `pkey` verifies, or a JwtKeyError for keys no supported algorithm takes.
JwtKey classify(std::shared_ptr<EVP_PKEY> pkey, std::string kid) {
  EVP_PKEY* k = pkey.get();
  if (EVP_PKEY_is_a(k, "RSA")) {
    int bits = EVP_PKEY_get_bits(k);
    if (bits < static_cast<int>(JwtKeySet::kMinRsaBits))
      throw JwtKeyError("an RSA key of " + std::to_string(bits) + " bits (RS256 needs at least " +
                        std::to_string(JwtKeySet::kMinRsaBits) + ")");
    return {JwtAlg::kRS256, std::move(kid), std::move(pkey), {}};
  }
  if (EVP_PKEY_is_a(k, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) ||
        (std::string_view(group) != "prime256v1" && std::string_view(group) != "P-256"))
      throw JwtKeyError("an EC key on a curve other than P-256 (ES256 needs P-256)");
    return {JwtAlg::kES256, std::move(kid), std::move(pkey), {}};
  }
  throw JwtKeyError("a key that is neither RSA nor EC P-256");
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string_view str(const rapidjson::Value& obj, const char* name) {
  const rapidjson::Value* v = py_get(obj, name);
  if (!v || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

// A public key from OSSL_PARAMs (JWK members), checked to be a usable public key.
std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0 || !raw)
    return nullptr;
  auto pkey = own(raw);
  // An EC point must be on the curve (fromdata alone does not check it).
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return pkey;
}

std::unique_ptr<BIGNUM, BnDeleter> bignum(std::string_view b64) {
  auto bytes = base64url_decode(b64);
  if (!bytes || bytes->empty()) return nullptr;
  return std::unique_ptr<BIGNUM, BnDeleter>(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                static_cast<int>(bytes->size()), nullptr));
}

std::shared_ptr<EVP_PKEY> rsa_from_jwk(const rapidjson::Value& jwk) {
  auto n = bignum(str(jwk, "n"));
  auto e = bignum(str(jwk, "e"));
  if (!n || !e) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    return nullptr;
  return from_params("RSA", bld.get());
}

std::shared_ptr<EVP_PKEY> ec_from_jwk(const rapidjson::Value& jwk) {
  auto x = base64url_decode(str(jwk, "x"));
  auto y = base64url_decode(str(jwk, "y"));
  if (!x || !y || x->size() != 32 || y->size() != 32) return nullptr;
  std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size()))
    return nullptr;
  return from_params("EC", bld.get());
}

}  // namespace

std::string_view jwt_alg_name(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::kRS256:
      return "RS256";
    case JwtAlg::kES256:
      return "ES256";
    case JwtAlg::kHS256:
      return "HS256";
  }
  return "?";
}

void JwtKeySet::add_key_file_text(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{')
    add_jwks(text);
  else
    add_pem(text);
}

void JwtKeySet::add_hs256_secret(std::string secret) {
  if (secret.empty()) throw JwtKeyError("an empty HS256 secret");
  keys_.push_back({JwtAlg::kHS256, {}, nullptr, std::move(secret)});
}

void JwtKeySet::add_pem(std::string_view text) {
  // The verifier needs the public half only; a private key here is a mistake worth stopping.
  if (text.find("PRIVATE KEY-----") != std::string_view::npos)
    throw JwtKeyError("a private key: give the public key (openssl pkey -pubout)");
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw JwtKeyError("out of memory");
  EVP_PKEY* raw = nullptr;
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert) {
      raw = X509_get_pubkey(cert);
      X509_free(cert);
    }
  } else {
    // "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1).
    OSSL_DECODER_CTX* dctx = OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, nullptr,
                                                           EVP_PKEY_PUBLIC_KEY, nullptr, nullptr);
    if (dctx && !OSSL_DECODER_from_bio(dctx, bio.get())) raw = nullptr;
    OSSL_DECODER_CTX_free(dctx);
  }
  if (!raw)
    throw JwtKeyError(
        "neither a PEM public key (PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE) nor a JWKS document");
  keys_.push_back(classify(own(raw), {}));
}

void JwtKeySet::add_jwks(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  const rapidjson::Value* list =
      doc.HasParseError() || !doc.IsObject() ? nullptr : py_get(doc, "keys");
  if (!list || !list->IsArray())
    throw JwtKeyError("not a JWKS document (a JSON object with a \"keys\" array)");
  size_t usable = 0;
  size_t index = 0;
  for (const auto& jwk : list->GetArray()) {
    std::string where = "JWKS key " + std::to_string(index++);
    if (!jwk.IsObject()) throw JwtKeyError(where + " is not a JSON object");
    std::string_view kty = str(jwk, "kty"), use = str(jwk, "use"), alg = str(jwk, "alg");
    if (!use.empty() && use != "sig") continue;  // an encryption key
    std::shared_ptr<EVP_PKEY> pkey;
    if (kty == "RSA" && (alg.empty() || alg == "RS256")) {
      pkey = rsa_from_jwk(jwk);
    } else if (kty == "EC" && str(jwk, "crv") == "P-256" && (alg.empty() || alg == "ES256")) {
      pkey = ec_from_jwk(jwk);
    } else {
      continue;  // another key type, curve or algorithm: not ours to verify with
    }
    if (!pkey) throw JwtKeyError(where + " (" + std::string(kty) + ") has unusable key members");
    std::string kid(str(jwk, "kid"));
    try {
      keys_.push_back(classify(std::move(pkey), kid));
    } catch (const JwtKeyError& e) {
      throw JwtKeyError(where + ": " + e.what());
    }
    ++usable;
  }
  if (usable == 0) throw JwtKeyError("a JWKS document without an RS256 or ES256 signing key");
}

}  // namespace ringcast::profiles
