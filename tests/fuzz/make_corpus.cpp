// Writes the seed corpora of the codec fuzz targets (layout in fuzz_codec_common.hpp): for each
// codec, round-trip seeds (synthetic tensors) and decode seeds (valid streams of them), a few KB.
//   cdma_fuzz_make_corpus DIR   -> DIR/<codec>/seed_*.bin
#include <cdma/formats/codec.hpp>
#include <cdma/formats/synth.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace cdma::formats;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  struct Target {
    const char* dir;
    const char* codec;
    unsigned param;
  };
  const Target targets[] = {{"zvc", "zvc", 0}, {"zrle", "zrle-4", 3}, {"zlib", "zlib-6", 6}, {"zstd", "zstd-1", 0},
                            {"lz4", "lz4", 0}, {"bpc", "bpc", 0},     {"ebpc", "ebpc", 0},   {"expzstd", "expzstd", 0}};
  struct Case {
    DType t;
    double d;
    Clustering c;
    std::vector<std::int64_t> dims;
  };
  const Case cases[] = {{DType::f32, 0.3, Clustering::mixed, {1, 2, 6, 6}},
                        {DType::f16, 0.6, Clustering::spatial, {1, 1, 7, 9}},
                        {DType::u8, 0.1, Clustering::uniform, {1, 1, 1, 77}},
                        {DType::f32, 1.0, Clustering::uniform, {1, 1, 1, 33}}};
  int files = 0;
  for (const auto& tg : targets) {
    std::filesystem::create_directories(root / tg.dir);
    const auto codec = make_codec(tg.codec);
    int i = 0;
    for (const auto& cs : cases) {
      SynthSpec s;
      s.dims = cs.dims;
      s.dtype = cs.t;
      s.density = cs.d;
      s.clustering = cs.c;
      s.seed = 7;
      const auto t = synth_activations(s);
      const std::size_t w = dtype_size(cs.t);
      const unsigned wsel = w == 1 ? 0 : w == 2 ? 1 : 2;
      // Round trip seed.
      std::vector<unsigned char> rt{static_cast<unsigned char>(wsel | tg.param << 3)};
      for (auto b : t) rt.push_back(std::to_integer<unsigned char>(b));
      // Decode seed: a valid stream.
      std::vector<std::byte> enc(codec->max_encoded_size(t.size(), w));
      enc.resize(codec->encode(t, w, enc));
      const std::size_t n = t.size() / w;
      std::vector<unsigned char> dec{static_cast<unsigned char>(wsel | 4u | tg.param << 3),
                                     static_cast<unsigned char>(n & 0xff), static_cast<unsigned char>(n >> 8)};
      for (auto b : enc) dec.push_back(std::to_integer<unsigned char>(b));
      for (const auto* v : {&rt, &dec}) {
        const auto path = root / tg.dir / ("seed_" + std::to_string(i++) + ".bin");
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size()));
        ++files;
      }
    }
  }
  std::printf("wrote %d seed files under %s\n", files, root.c_str());
  return 0;
}
