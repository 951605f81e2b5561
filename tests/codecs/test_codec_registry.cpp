#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/zero_scan.hpp>

#include <gtest/gtest.h>
#include <zstd.h>

#include "codec_test_util.hpp"

using namespace cdma::formats;
using cdma::test::random_tensor;

namespace {
const char* kAll[] = {"zvc",    "zrle-1", "zrle-4", "zrle-16", "zlib-1", "zlib-6", "zlib-9",
                      "zstd-1", "zstd-3", "lz4",    "bpc",     "ebpc",   "expzstd"};
}

TEST(CodecRegistry, NamesAndDefaults) {
  EXPECT_EQ(make_codec("zvc")->name(), "zvc");
  EXPECT_EQ(make_codec("zrle")->name(), "zrle-4");
  EXPECT_EQ(make_codec("zrle-12")->name(), "zrle-12");
  EXPECT_EQ(make_codec("zlib")->name(), "zlib-6");
  EXPECT_EQ(make_codec("zstd")->name(), "zstd-1");
  EXPECT_EQ(make_codec("zstd-19")->name(), "zstd-19");
  EXPECT_EQ(make_codec("lz4")->name(), "lz4");
  EXPECT_EQ(make_codec("bpc")->name(), "bpc");
  EXPECT_EQ(make_codec("ebpc")->name(), "ebpc");
  EXPECT_EQ(make_codec("expzstd")->name(), "expzstd");
  EXPECT_EQ(codec_families().size(), 8u);
  for (const char* bad : {"", "zvc-2", "zrle-0", "zrle-17", "zrle-", "zrle-x", "zlib-10", "zstd-0", "lz5", "ZVC",
                          "zlib-6 ", "bpc-8", "ebpc-1", "EBPC", "expzstd-1", "exp"}) {
    try {
      (void)make_codec(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const CodecError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(CodecRegistry, OneTableDrivesNamesDefaultsAndHelp) {
  EXPECT_EQ(codec_families(),
            (std::vector<std::string>{"zvc", "zrle", "zlib", "zstd", "lz4", "bpc", "ebpc", "expzstd"}));
  // bpc, ebpc and expzstd are named with --codecs; the analyzer's default list is the paper's three plus zstd and lz4.
  EXPECT_EQ(default_codecs(), (std::vector<std::string>{"zvc", "zrle-4", "zlib-6", "zstd-1", "lz4"}));
  EXPECT_EQ(codec_help(), "zvc, zrle[-K] (K 1..16, default 4), zlib[-L] (L 0..9, default 6), zstd[-L] (L 1.." +
                              std::to_string(ZSTD_maxCLevel()) + ", default 1), lz4, bpc, ebpc, expzstd");
  for (const auto& f : codec_table()) {
    EXPECT_EQ(make_codec(f.name)->name(), f.default_spec());
    if (!f.param) continue;
    for (int p : {f.min, f.dflt, f.max})
      EXPECT_EQ(make_codec(f.name + "-" + std::to_string(p))->name(), f.name + "-" + std::to_string(p));
    for (int p : {f.min - 1, f.max + 1}) EXPECT_THROW((void)make_codec(f.name + "-" + std::to_string(p)), CodecError);
  }
  try {
    (void)make_codec("lz5");
    ADD_FAILURE();
  } catch (const CodecError& e) {
    EXPECT_NE(std::string(e.what()).find("expected one of: " + codec_help()), std::string::npos) << e.what();
  }
}

TEST(CodecRegistry, EveryCodecRoundTripsEveryWidth) {
  std::mt19937_64 rng(21);
  for (const char* spec : kAll) {
    const auto codec = make_codec(spec);
    for (std::size_t w : {1, 2, 4}) {
      for (std::size_t n : {0, 1, 33, 1000, 20000}) {
        for (double d : {0.0, 0.3, 1.0}) {
          SCOPED_TRACE(testing::Message() << spec << " w " << w << " n " << n << " d " << d);
          const auto in = random_tensor(rng, n, w, d, 8);
          std::vector<std::byte> enc(codec->max_encoded_size(in.size(), w));
          enc.resize(codec->encode(in, w, enc));
          EXPECT_EQ(codec->compressed_size(in, w), enc.size());
          std::vector<std::byte> back(in.size(), std::byte{0x77});
          codec->decode(enc, w, back);
          EXPECT_EQ(back, in);
        }
      }
    }
  }
}

TEST(CodecRegistry, DecodersRejectCorruptionWithoutCrashing) {
  std::mt19937_64 rng(23);
  SynthSpec spec;
  spec.dims = {1, 4, 16, 16};
  spec.density = 0.4;
  spec.clustering = Clustering::mixed;
  const auto in = synth_activations(spec);
  for (const char* spec_name : kAll) {
    const auto codec = make_codec(spec_name);
    std::vector<std::byte> enc(codec->max_encoded_size(in.size(), 4));
    enc.resize(codec->encode(in, 4, enc));
    SCOPED_TRACE(spec_name);
    std::vector<std::byte> out(in.size());
    // Truncated and extended streams must throw; the wrong output size too.
    EXPECT_THROW(codec->decode({enc.data(), enc.size() - 1}, 4, out), CodecError);
    EXPECT_THROW(codec->decode({enc.data(), enc.size() / 2}, 4, out), CodecError);
    auto longer = enc;
    longer.push_back(std::byte{0});
    EXPECT_THROW(codec->decode(longer, 4, out), CodecError);
    // 128 bytes = 32 fp32 elements: a whole ZVC block, so that a zero tail cannot make it valid.
    std::vector<std::byte> shorter_out(in.size() - 128), longer_out(in.size() + 128);
    EXPECT_THROW(codec->decode(enc, 4, shorter_out), CodecError);
    EXPECT_THROW(codec->decode(enc, 4, longer_out), CodecError);
    // Random bit flips: either an error or some output, never a crash (ASan checks the rest).
    for (int i = 0; i < 200; ++i) {
      auto bad = enc;
      bad[rng() % bad.size()] ^= std::byte{static_cast<unsigned char>(1u << (rng() % 8))};
      try {
        codec->decode(bad, 4, out);
      } catch (const CodecError&) {
      }
    }
  }
}

TEST(CodecRegistry, ChunkedSizesSumIndependentChunks) {
  SynthSpec spec;
  spec.dims = {2, 8, 32, 32};
  spec.density = 0.3;
  spec.clustering = Clustering::spatial;
  const auto in = synth_activations(spec);
  for (const char* name : kAll) {
    const auto codec = make_codec(name);
    std::size_t sum = 0;
    for (std::size_t off = 0; off < in.size(); off += 4096)
      sum += codec->compressed_size(std::span(in).subspan(off, std::min<std::size_t>(4096, in.size() - off)), 4);
    EXPECT_EQ(chunked_compressed_size(*codec, in, 4, 4096), sum) << name;
    EXPECT_EQ(chunked_compressed_size(*codec, in, 4, 0), codec->compressed_size(in, 4)) << name;
  }
  // ZVC is unchanged by chunking at multiples of 32 elements.
  const auto zvc = make_codec("zvc");
  EXPECT_EQ(chunked_compressed_size(*zvc, in, 4, 4096), zvc->compressed_size(in, 4));
  // Chunk sizes are rounded down to whole elements.
  EXPECT_EQ(chunked_compressed_size(*zvc, in, 4, 4099), chunked_compressed_size(*zvc, in, 4, 4096));
}
