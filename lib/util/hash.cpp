#include "lib/util/hash.hpp"

// The SHA256_* functions are deprecated in OpenSSL 3 in favour of EVP, but
// the first EVP digest of a process loads the configuration and the default
// provider: about 0.8 ms, a noticeable share of a 50 ms submit. SHA256_*
// runs the same assembly (SHA extensions included) without that set-up.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::util {

struct Sha256::Impl {
  SHA256_CTX context;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  if (SHA256_Init(&m_impl->context) != 1) {
    throw InfraError("OpenSSL: cannot initialise sha256");
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
  SHA256_Update(&m_impl->context, data, size);
}

std::string Sha256::hex_digest() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &m_impl->context);
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{2} * SHA256_DIGEST_LENGTH);
  for (unsigned char byte : digest) {
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 15]);
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
