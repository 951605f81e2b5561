// Reference sizes for the byte codecs, straight from the libraries (zstd, lz4, zlib), that the
// analyzer's sizes are checked against (test_tensor.cpp, test_windows.cpp). Each call fails the
// current test when the library reports an error.
#pragma once

#include <gtest/gtest.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <span>
#include <vector>

namespace cdma::test {

inline std::size_t zstd_size(std::span<const std::byte> d, int level) {
  std::vector<char> out(ZSTD_compressBound(d.size()));
  std::size_t r = ZSTD_compress(out.data(), out.size(), d.data(), d.size(), level);
  EXPECT_FALSE(ZSTD_isError(r));
  return r;
}

inline std::size_t lz4_size(std::span<const std::byte> d) {
  std::vector<char> out(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(d.size()))));
  int r = LZ4_compress_default(reinterpret_cast<const char*>(d.data()), out.data(), static_cast<int>(d.size()),
                               static_cast<int>(out.size()));
  EXPECT_GT(r, 0);
  return static_cast<std::size_t>(r);
}

inline std::size_t zlib_size(std::span<const std::byte> d, int level) {
  uLongf len = compressBound(d.size());
  std::vector<Bytef> out(len);
  EXPECT_EQ(compress2(out.data(), &len, reinterpret_cast<const Bytef*>(d.data()), d.size(), level), Z_OK);
  return len;
}

}  // namespace cdma::test
