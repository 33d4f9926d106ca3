#include "lib/util/hash.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::util {

struct Sha256::Impl {
  EVP_MD_CTX* context = nullptr;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  m_impl->context = EVP_MD_CTX_new();
  if (m_impl->context == nullptr || EVP_DigestInit_ex(m_impl->context, EVP_sha256(), nullptr) != 1) {
    throw InfraError("OpenSSL: cannot initialise sha256");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(m_impl->context); }

void Sha256::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(m_impl->context, data, size);
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(m_impl->context, digest, &length);
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(digits[digest[i] >> 4]);
    out.push_back(digits[digest[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 hash;
  hash.update(data);
  return hash.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw_errno(fmt::format("cannot open {}", path.string()));
  }
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(fmt::format("cannot read {}", path.string()));
    }
    if (n == 0) break;
    hash.update(buffer.data(), static_cast<std::size_t>(n));
  }
  return hash.hex_digest();
}

}  // namespace amlrun::util
