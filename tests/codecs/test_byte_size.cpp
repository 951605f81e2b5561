// The one byte-size grammar (formats/byte_size.hpp), as the CLI options and CDMA_CAPTURE_* use it.
#include <cdma/formats/byte_size.hpp>

#include <gtest/gtest.h>

#include <string>

using cdma::formats::byte_size_error;
using cdma::formats::parse_byte_size;

TEST(ByteSize, DigitsAndBinaryUnits) {
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("4096B"), 4096u);
  EXPECT_EQ(parse_byte_size("4K"), 4096u);
  EXPECT_EQ(parse_byte_size("4k"), 4096u);
  EXPECT_EQ(parse_byte_size("64KiB"), 65536u);
  EXPECT_EQ(parse_byte_size("64kib"), 65536u);
  EXPECT_EQ(parse_byte_size("1M"), 1u << 20);
  EXPECT_EQ(parse_byte_size("3MiB"), 3u << 20);
  EXPECT_EQ(parse_byte_size("2G"), std::uint64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("2GiB"), std::uint64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("1T"), std::uint64_t{1} << 40);
  EXPECT_EQ(parse_byte_size("7TiB"), std::uint64_t{7} << 40);
  EXPECT_EQ(parse_byte_size("4194304T"), std::uint64_t{1} << 62);  // the largest accepted
}

TEST(ByteSize, RefusesWithAReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"", "empty"},
      {"-1", "must not be negative"},
      {"-4K", "must not be negative"},
      {"K", "not a whole number of bytes"},
      {" 4", "not a whole number of bytes"},
      {"1.5G", "unknown unit '.5G'"},
      {"12Q", "unknown unit 'Q'"},
      {"4 K", "unknown unit ' K'"},
      {"4KB", "unknown unit 'KB'"},
      {"1BiB", "unknown unit 'BiB'"},
      {"4194305T", "more than 2^62 bytes"},
      {"4611686018427387905", "more than 2^62 bytes"},
      {"99999999999999999999999", "too large"},
  };
  for (const auto& [text, reason] : bad) {
    std::string why;
    EXPECT_FALSE(parse_byte_size(text, &why)) << text;
    EXPECT_EQ(why, reason) << text;
  }
  std::string why;
  EXPECT_EQ(parse_byte_size("4K", &why, 4096), 4096u);
  EXPECT_FALSE(parse_byte_size("4097", &why, 4096));
  EXPECT_EQ(why, "more than 4096 bytes");
}

TEST(ByteSize, MessagesNameTheOption) {
  EXPECT_EQ(byte_size_error("--chunk", "-1", "must not be negative"),
            "--chunk '-1': must not be negative (expected e.g. 4096, 4K, 64KiB, 1M, 2G)");
}
