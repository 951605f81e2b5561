// Fashion-MNIST (or MNIST) in IDX format, gzip-compressed or plain (Debian dataset-fashion-mnist).
// No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace cdma::train {

// Images and labels of one split; pixels row-major, one byte each, image after image.
struct Split {
  std::int64_t count = 0;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols
  std::vector<std::uint8_t> labels;  // count, each < 10
};

// Reads an IDX image file (magic 0x00000803). Throws TrainError naming the file and what was expected.
Split read_idx_images(const std::filesystem::path& file, std::int64_t limit = 0);
// Reads an IDX label file (magic 0x00000801) into split.labels; checks the count and the range.
void read_idx_labels(const std::filesystem::path& file, Split& split);

// Loads "train" or "t10k" from dir: <prefix>-images-idx3-ubyte(.gz) and <prefix>-labels-idx1-ubyte(.gz).
// limit > 0 keeps only the first `limit` images. Throws TrainError when files are missing or malformed.
Split load_split(const std::filesystem::path& dir, const char* prefix, std::int64_t limit = 0);

}  // namespace cdma::train
