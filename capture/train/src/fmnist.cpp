#include "fmnist.hpp"

#include "options.hpp"

#include <zlib.h>

#include <array>
#include <memory>
#include <string>

namespace cdma::train {

namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using Gz = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// gzread reads plain files transparently, so .gz and uncompressed IDX files both work.
Gz open_gz(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw TrainError("cannot read '" + file.string() +
                     "': no such file (install Debian's dataset-fashion-mnist "
                     "or pass --data-dir)");
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) throw TrainError("cannot open '" + file.string() + "'");
  return Gz(f);
}

void read_exact(gzFile f, const std::filesystem::path& file, void* dst, std::size_t n, const char* what) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
    int got = gzread(f, p, chunk);
    if (got <= 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      throw TrainError("'" + file.string() + "' is truncated or corrupt while reading " + what +
                       (err != Z_OK && msg ? std::string(" (") + msg + ")" : std::string()));
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

std::uint32_t read_be32(gzFile f, const std::filesystem::path& file, const char* what) {
  std::array<unsigned char, 4> b{};
  read_exact(f, file, b.data(), 4, what);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

}  // namespace

Split read_idx_images(const std::filesystem::path& file, std::int64_t limit) {
  auto f = open_gz(file);
  std::uint32_t magic = read_be32(f.get(), file, "the header");
  if (magic != 0x00000803)
    throw TrainError("'" + file.string() + "' is not an IDX image file: magic " + std::to_string(magic) +
                     ", expected 2051 (0x00000803)");
  Split s;
  s.count = read_be32(f.get(), file, "the header");
  s.rows = read_be32(f.get(), file, "the header");
  s.cols = read_be32(f.get(), file, "the header");
  if (s.rows < 1 || s.rows > 4096 || s.cols < 1 || s.cols > 4096 || s.count < 1)
    throw TrainError("'" + file.string() + "' has an implausible shape " + std::to_string(s.count) + "x" +
                     std::to_string(s.rows) + "x" + std::to_string(s.cols));
  if (limit > 0 && limit < s.count) s.count = limit;
  s.pixels.resize(static_cast<std::size_t>(s.count * s.rows * s.cols));
  read_exact(f.get(), file, s.pixels.data(), s.pixels.size(), "the pixels");
  return s;
}

void read_idx_labels(const std::filesystem::path& file, Split& s) {
  auto f = open_gz(file);
  std::uint32_t magic = read_be32(f.get(), file, "the header");
  if (magic != 0x00000801)
    throw TrainError("'" + file.string() + "' is not an IDX label file: magic " + std::to_string(magic) +
                     ", expected 2049 (0x00000801)");
  std::int64_t n = read_be32(f.get(), file, "the header");
  if (n < s.count)
    throw TrainError("'" + file.string() + "' holds " + std::to_string(n) + " labels, expected at least " +
                     std::to_string(s.count) + " (one per image)");
  s.labels.resize(static_cast<std::size_t>(s.count));
  read_exact(f.get(), file, s.labels.data(), s.labels.size(), "the labels");
  for (std::size_t i = 0; i < s.labels.size(); ++i)
    if (s.labels[i] > 9)
      throw TrainError("'" + file.string() + "': label " + std::to_string(i) + " is " + std::to_string(s.labels[i]) +
                       ", expected 0..9");
}

Split load_split(const std::filesystem::path& dir, const char* prefix, std::int64_t limit) {
  auto pick = [&](const std::string& base) {
    auto gz = dir / (base + ".gz");
    std::error_code ec;
    if (std::filesystem::exists(gz, ec)) return gz;
    auto plain = dir / base;
    if (std::filesystem::exists(plain, ec)) return plain;
    throw TrainError("Fashion-MNIST file '" + gz.string() +
                     "' not found (install Debian's dataset-fashion-mnist "
                     "or pass --data-dir DIR holding " +
                     base + "[.gz])");
  };
  Split s = read_idx_images(pick(std::string(prefix) + "-images-idx3-ubyte"), limit);
  read_idx_labels(pick(std::string(prefix) + "-labels-idx1-ubyte"), s);
  return s;
}

}  // namespace cdma::train
