// The IDX loader: round trips through gzip and plain files, and clear errors on bad input.
#include "fmnist.hpp"
#include "options.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <string>
#include <vector>

using namespace cdma::train;
namespace fs = std::filesystem;

namespace {

void be32(std::vector<unsigned char>& v, std::uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<unsigned char>(x >> s));
}

std::vector<unsigned char> idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::vector<unsigned char> v;
  be32(v, 0x803);
  be32(v, n);
  be32(v, rows);
  be32(v, cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i) v.push_back(static_cast<unsigned char>(i * 7 + 3));
  return v;
}

std::vector<unsigned char> idx_labels(std::uint32_t n, unsigned char bad_at = 255) {
  std::vector<unsigned char> v;
  be32(v, 0x801);
  be32(v, n);
  for (std::uint32_t i = 0; i < n; ++i) v.push_back(i == bad_at ? 12 : static_cast<unsigned char>(i % 10));
  return v;
}

void write_gz(const fs::path& p, const std::vector<unsigned char>& v) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, v.data(), static_cast<unsigned>(v.size())), static_cast<int>(v.size()));
  gzclose(f);
}

void write_plain(const fs::path& p, const std::vector<unsigned char>& v) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
}

std::string error_of(const fs::path& dir, const char* prefix) {
  try {
    load_split(dir, prefix);
  } catch (const TrainError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TrainIdx, GzipAndPlainFilesRoundTrip) {
  cdma::test::TempDir d;
  write_gz(d / "train-images-idx3-ubyte.gz", idx_images(5, 3, 2));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(5));
  write_plain(d / "t10k-images-idx3-ubyte", idx_images(4, 3, 2));
  write_plain(d / "t10k-labels-idx1-ubyte", idx_labels(4));
  Split s = load_split(d.path(), "train");
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.cols, 2);
  ASSERT_EQ(s.pixels.size(), 30u);
  EXPECT_EQ(s.pixels[0], 3);
  EXPECT_EQ(s.pixels[29], static_cast<unsigned char>(29 * 7 + 3));
  EXPECT_EQ(s.labels, (std::vector<std::uint8_t>{0, 1, 2, 3, 4}));
  Split t = load_split(d.path(), "t10k", 2);  // limit
  EXPECT_EQ(t.count, 2);
  EXPECT_EQ(t.pixels.size(), 12u);
  EXPECT_EQ(t.labels.size(), 2u);
}

TEST(TrainIdx, MissingFilesNameTheFileAndThePackage) {
  cdma::test::TempDir d;
  auto msg = error_of(d.path() / "nowhere", "train");
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
}

TEST(TrainIdx, MalformedFilesAreRejected) {
  cdma::test::TempDir d;
  // Labels file where images are expected: wrong magic.
  write_gz(d / "train-images-idx3-ubyte.gz", idx_labels(5));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(5));
  auto msg = error_of(d.path(), "train");
  EXPECT_NE(msg.find("not an IDX image file"), std::string::npos) << msg;

  // Truncated pixels.
  auto img = idx_images(5, 3, 2);
  img.resize(img.size() - 4);
  write_gz(d / "train-images-idx3-ubyte.gz", img);
  msg = error_of(d.path(), "train");
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  // Fewer labels than images.
  write_gz(d / "train-images-idx3-ubyte.gz", idx_images(5, 3, 2));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(3));
  msg = error_of(d.path(), "train");
  EXPECT_NE(msg.find("holds 3 labels"), std::string::npos) << msg;

  // A label out of range.
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(5, 2));
  msg = error_of(d.path(), "train");
  EXPECT_NE(msg.find("label 2 is 12"), std::string::npos) << msg;

  // Empty file.
  write_plain(d / "train-images-idx3-ubyte.gz", {});
  msg = error_of(d.path(), "train");
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}
