// OpenSSL is used here only to read and match the PEM files; the TLS sessions
// themselves are libwebsockets' (over the same OpenSSL).
#include "ws/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace tailbus::ws {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

Result<std::unique_ptr<std::FILE, FileCloser>> Open(const char* flag, const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    return Status::InvalidArgument(std::string(flag) + " " + path +
                                   ": cannot read: " + std::strerror(errno));
  }
  return f;
}

Status CheckFiles(const std::string& cert_file, const std::string& key_file);

}  // namespace

Status CheckTlsFiles(const std::string& cert_file, const std::string& key_file) {
  Status st = CheckFiles(cert_file, key_file);
  ERR_clear_error();  // leave no stale errors for libwebsockets' own OpenSSL calls
  return st;
}

namespace {
Status CheckFiles(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() && key_file.empty()) return Status::Ok();
  if (cert_file.empty() || key_file.empty()) {
    return Status::InvalidArgument("TLS needs both --tls-cert and --tls-key (got only " +
                                   std::string(cert_file.empty() ? "--tls-key" : "--tls-cert") +
                                   ")");
  }
  auto cf = Open("--tls-cert", cert_file);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<X509, X509Free> cert(PEM_read_X509(cf->get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return Status::InvalidArgument("--tls-cert " + cert_file +
                                   ": not a PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  auto kf = Open("--tls-key", key_file);
  if (!kf.ok()) return kf.status();
  // No passphrase callback: an encrypted key fails here instead of prompting.
  static char kEmpty[] = "";
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_PrivateKey(kf->get(), nullptr, nullptr, static_cast<void*>(kEmpty)));
  if (!key) {
    return Status::InvalidArgument("--tls-key " + key_file +
                                   ": not an unencrypted PEM private key");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Status::InvalidArgument("--tls-key " + key_file +
                                   ": does not match the certificate in " + cert_file);
  }
  return Status::Ok();
}
}  // namespace

}  // namespace tailbus::ws
