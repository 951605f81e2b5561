// Plain regression driver for libFuzzer targets: runs LLVMFuzzerTestOneInput over every file of the
// given directories (or files), then over a bounded number of deterministic mutations of each
// (bit flips, byte changes, truncations, insertions, deletions, duplications). Same inputs on every
// run, so a failure reproduces; crashes and sanitizer reports end the process non-zero.
//   fuzz_<name> [--mutations N] CORPUS_DIR_OR_FILE...     (CDMA_FUZZ_SAVE: see main)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
};

std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> v, Rng& r) {
  const int ops = 1 + static_cast<int>(r.below(4));
  for (int i = 0; i < ops; ++i) {
    switch (r.below(7)) {
      case 0:  // flip a bit
        if (!v.empty()) v[r.below(v.size())] ^= static_cast<std::uint8_t>(1u << r.below(8));
        break;
      case 1:  // set a byte to an interesting value
        if (!v.empty()) {
          static const std::uint8_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0x20, 0x1f};
          v[r.below(v.size())] = vals[r.below(sizeof vals)];
        }
        break;
      case 2:  // truncate
        v.resize(r.below(v.size() + 1));
        break;
      case 3:  // insert random bytes
        v.insert(v.begin() + static_cast<std::ptrdiff_t>(r.below(v.size() + 1)), 1 + r.below(8),
                 static_cast<std::uint8_t>(r.next()));
        break;
      case 4:  // delete a range
        if (!v.empty()) {
          const std::size_t at = r.below(v.size());
          v.erase(v.begin() + static_cast<std::ptrdiff_t>(at),
                  v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), at + 1 + r.below(16))));
        }
        break;
      case 5:  // duplicate a range at the end
        if (!v.empty()) {
          const std::size_t at = r.below(v.size());
          const std::size_t len = std::min(v.size() - at, 1 + r.below(64));
          std::vector<std::uint8_t> piece(v.begin() + static_cast<std::ptrdiff_t>(at),
                                          v.begin() + static_cast<std::ptrdiff_t>(at + len));
          v.insert(v.end(), piece.begin(), piece.end());
        }
        break;
      default:  // overwrite a 4-byte word (masks, lengths)
        if (v.size() >= 4) {
          const std::uint32_t w = static_cast<std::uint32_t>(r.next());
          std::memcpy(v.data() + r.below(v.size() - 3), &w, 4);
        }
        break;
    }
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 64;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mutations" && i + 1 < argc) {
      mutations = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--mutations N] CORPUS_DIR_OR_FILE...\n", argv[0]);
      return 0;
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(a)) {
      files.emplace_back(a);
    } else {
      std::fprintf(stderr, "%s: no such corpus file or directory: %s\n", argv[0], a.c_str());
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "%s: empty corpus\n", argv[0]);
    return 1;
  }
  std::sort(files.begin(), files.end());
  // CDMA_FUZZ_SAVE=FILE: each mutated input is written there before it runs, so that the one a
  // hang or crash stopped at can be replayed (fuzz_<name> FILE).
  const char* save = std::getenv("CDMA_FUZZ_SAVE");
  long runs = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<std::uint8_t> seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(seed.data(), seed.size());
    ++runs;
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the file name: same mutations everywhere
    for (unsigned char c : f.filename().string()) h = (h ^ c) * 0x100000001b3ULL;
    Rng r{h};
    for (long m = 0; m < mutations; ++m, ++runs) {
      const auto v = mutate(seed, r);
      if (save)
        std::ofstream(save, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
      LLVMFuzzerTestOneInput(v.data(), v.size());
    }
  }
  LLVMFuzzerTestOneInput(nullptr, 0);
  std::printf("%s: %ld inputs from %zu corpus files, no crash\n", argv[0], runs + 1, files.size());
  return 0;
}
