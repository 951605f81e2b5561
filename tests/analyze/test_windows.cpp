// Tensors bigger than Options::max_block_bytes (issue 13, "big tensors"): analysed in windows with
// byte codecs in blocks of at most that size. Checked against direct library calls block by block
// and against the real ZVC/ZRLE encoders chunk by chunk, with a tiny max_block_bytes so that small
// tensors take the windowed paths; one real 2 GiB tensor end to end.
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/analyze/tensor.hpp>
#include <cdma/analyze/transform.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>
#include <nlohmann/json.hpp>

#include "ref_codec_sizes.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cdma::analyze {
namespace {

using formats::DType;
using formats::Layout;

using test::lz4_size;
using test::zlib_size;
using test::zstd_size;

// Sum of sizes of consecutive pieces of `step` bytes (the last may be short).
template <class F>
std::size_t pieces(std::span<const std::byte> d, std::size_t step, F f) {
  std::size_t s = 0;
  for (std::size_t i = 0; i < d.size(); i += step) s += f(d.subspan(i, std::min(step, d.size() - i)));
  return s;
}

formats::TensorMeta meta_of(const formats::SynthSpec& s) {
  formats::TensorMeta m;
  m.name = "t";
  m.layer = "l";
  m.op = "conv";
  m.dtype = s.dtype;
  m.layout = s.dims.size() == 4 ? Layout::NCHW : Layout::NC;
  m.dims = s.dims;
  return m;
}

// A trace of one tensor per spec (clustering mixed, seed and layer index 1, 2, ...), written
// contiguous or deflated.
void write_synth_trace(const std::filesystem::path& p, std::vector<formats::SynthSpec> specs, int deflate = 0) {
  formats::TraceAttrs a;
  a.producer = "test";
  a.source = "synthetic";
  formats::WriterOptions wo;
  wo.deflate_level = deflate;
  formats::TraceWriter w(p, a, wo);
  int i = 0;
  for (auto& s : specs) {
    s.clustering = formats::Clustering::mixed;
    s.seed = static_cast<std::uint64_t>(++i);
    auto m = meta_of(s);
    m.layer = "l" + std::to_string(i);
    m.layer_index = i;
    w.append_tensor(m, formats::synth_activations(s));
  }
  w.close();
}

std::vector<std::byte> tensor(unsigned seed) {
  formats::SynthSpec s;
  s.dims = {2, 16, 24, 20};  // 61,440 bytes of fp32
  s.density = 0.3;
  s.clustering = formats::Clustering::mixed;
  s.seed = seed;
  return formats::synth_activations(s);
}

// Byte codecs: blocks of min(chunk, max_block) bytes (whole elements); ZVC/ZRLE: the real encoders
// per chunk (the whole tensor without one), whatever max_block is; counts: the tensor's own.
TEST(AnalyzeWindows, ByteCodecBlocksAndChunksMatchTheLibraries) {
  formats::SynthSpec spec;
  spec.dims = {2, 16, 24, 20};
  const auto data = tensor(3);
  for (std::size_t max_block : {std::size_t{4096}, std::size_t{1000}, std::size_t{1} << 26}) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{100}, std::size_t{1000}, std::size_t{8192}}) {
      Options o;
      o.codecs = {"zvc", "zrle-4", "zrle-16", "zlib-6", "zstd-1", "lz4"};
      o.chunk_bytes = chunk;
      o.max_block_bytes = max_block;
      o.dtypes = {"stored", "float16"};
      o.layouts = {"stored", "NHWC"};
      o.verify = true;
      o.validate();
      TensorAnalyzer an(o);
      Workspace ws;
      const auto res = an.analyze(data, meta_of(spec), ws, "t");
      ASSERT_EQ(res.size(), 4u);
      for (std::size_t v = 0; v < res.size(); ++v) {
        const auto& var = an.variants()[v];
        std::vector<std::byte> bytes = data, perm;
        std::size_t w = 4;
        if (var.dtype == "float16") {
          ASSERT_TRUE(convert_dtype(data, DType::f32, DType::f16, bytes));
          w = 2;
        }
        if (var.layout == "NHWC") {
          permute_layout(bytes, spec.dims, Layout::NCHW, Layout::NHWC, w, perm);
          bytes = perm;
        }
        SCOPED_TRACE("max_block " + std::to_string(max_block) + " chunk " + std::to_string(chunk) + " " + var.layout +
                     "/" + var.dtype);
        const std::size_t chunk_step = chunk ? std::max(w, chunk / w * w) : bytes.size();
        const std::size_t block = std::min(chunk_step, std::max(w, max_block / w * w));
        const auto& m = res[v];
        for (std::size_t c = 0; c < 3; ++c) {
          auto codec = formats::make_codec(o.codecs[c]);
          const std::size_t want = pieces(bytes, chunk_step, [&](auto part) {
            std::vector<std::byte> out(codec->max_encoded_size(part.size(), w));
            return codec->encode(part, w, out);
          });
          EXPECT_EQ(*m.codecs[c].bytes, want) << o.codecs[c];
        }
        EXPECT_EQ(*m.codecs[3].bytes, pieces(bytes, block, [](auto d) { return zlib_size(d, 6); }));
        EXPECT_EQ(*m.codecs[4].bytes, pieces(bytes, block, [](auto d) { return zstd_size(d, 1); }));
        EXPECT_EQ(*m.codecs[5].bytes, pieces(bytes, block, [](auto d) { return lz4_size(d); }));
        std::uint64_t nnz = 0, runs = 0;
        bool prev_zero = false;
        for (std::size_t i = 0; i < bytes.size(); i += w) {
          const bool zero = std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(i),
                                        bytes.begin() + static_cast<std::ptrdiff_t>(i + w),
                                        [](std::byte b) { return b == std::byte{0}; });
          nnz += !zero;
          runs += zero && !prev_zero;
          prev_zero = zero;
        }
        EXPECT_EQ(m.nonzeros, nnz);
        EXPECT_EQ(m.zero_runs, runs);
      }
    }
  }
}

// A tensor fed window by window gives exactly what the whole tensor gives, for every chunk size,
// dtype variant and codec, with --verify on (every window's encodings decoded and compared).
TEST(AnalyzeWindows, StreamEqualsWholeTensor) {
  formats::SynthSpec spec;
  spec.dims = {2, 16, 24, 20};
  for (unsigned seed : {1u, 2u}) {
    auto data = tensor(seed);
    if (seed == 2) std::fill(data.begin() + 5000, data.begin() + 30000, std::byte{0});  // runs across windows
    for (std::size_t chunk : {std::size_t{0}, std::size_t{256}, std::size_t{6000}, std::size_t{40000}}) {
      Options o;
      o.codecs = {"zvc", "zrle-1", "zrle-4", "zrle-16", "zlib-1", "zstd-1", "lz4"};
      o.chunk_bytes = chunk;
      o.max_block_bytes = 4096;
      o.dtypes = {"stored", "float16", "bfloat16", "fp8-e4m3", "fp8-e5m2"};
      o.verify = true;
      o.validate();
      TensorAnalyzer an(o);
      const auto meta = meta_of(spec);
      ASSERT_TRUE(an.needs_windows(meta));
      ASSERT_FALSE(an.why_not_windowed(meta));
      Workspace ws1, ws2;
      const auto whole = an.analyze(data, meta, ws1, "t");
      TensorStream ts(an, meta, ws2, "t");
      const std::size_t win = an.window_elements(meta) * 4;
      ASSERT_LE(win, o.max_block_bytes);
      for (std::size_t off = 0; off < data.size(); off += win)
        ts.feed(std::span(data).subspan(off, std::min(win, data.size() - off)));
      const auto streamed = ts.finish();
      ASSERT_EQ(streamed.size(), whole.size());
      for (std::size_t v = 0; v < whole.size(); ++v) {
        SCOPED_TRACE("chunk " + std::to_string(chunk) + " variant " + std::to_string(v));
        EXPECT_EQ(streamed[v].actual_dtype, whole[v].actual_dtype);
        EXPECT_EQ(streamed[v].elements, whole[v].elements);
        EXPECT_EQ(streamed[v].bytes, whole[v].bytes);
        EXPECT_EQ(streamed[v].nonzeros, whole[v].nonzeros);
        EXPECT_EQ(streamed[v].zero_runs, whole[v].zero_runs);
        for (std::size_t c = 0; c < o.codecs.size(); ++c)
          EXPECT_EQ(*streamed[v].codecs[c].bytes, *whole[v].codecs[c].bytes) << o.codecs[c];
      }
    }
  }
}

TEST(AnalyzeWindows, StreamRefusesMisfedWindowsAndPermutations) {
  formats::SynthSpec spec;
  spec.dims = {2, 16, 24, 20};
  const auto data = tensor(1);
  Options o;
  o.max_block_bytes = 4096;
  o.layouts = {"stored", "NHWC"};
  o.validate();
  TensorAnalyzer an(o);
  Workspace ws;
  const auto why = an.why_not_windowed(meta_of(spec));
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("--layouts stored"), std::string::npos) << *why;
  EXPECT_THROW(TensorStream(an, meta_of(spec), ws, "t"), formats::Error);
  o.layouts = {"stored"};
  TensorAnalyzer an2(o);
  TensorStream ts(an2, meta_of(spec), ws, "t");
  EXPECT_THROW(ts.feed(std::span(data).subspan(0, 102)), formats::Error);  // not a whole number of fp32 elements
  ts.feed(std::span(data).subspan(0, 100));                                // any whole number of elements
  EXPECT_THROW(ts.feed(std::span(data)), formats::Error);                  // past the tensor's end
  EXPECT_THROW(ts.finish(), formats::Error);                               // only 25 elements fed
}

// zlib and zstd keep one compression state per thread between calls (compress2 and ZSTD_compress
// allocate one each time): the bytes must still be those of the one-shot calls, across levels,
// sizes (empty included) and interleavings.
TEST(CodecReuse, SameBytesAsOneShotLibraryCalls) {
  std::vector<std::vector<std::byte>> inputs{{}, tensor(5), std::vector<std::byte>(100000, std::byte{0})};
  inputs.push_back(std::vector<std::byte>(inputs[1].begin(), inputs[1].begin() + 4));
  for (int round = 0; round < 2; ++round) {
    for (int level : {6, 1, 9, 0}) {
      auto codec = formats::make_codec("zlib-" + std::to_string(level));
      for (const auto& in : inputs) {
        std::vector<std::byte> out(codec->max_encoded_size(in.size(), 4));
        out.resize(codec->encode(in, 4, out));
        uLongf len = compressBound(in.size());
        std::vector<std::byte> want(len);
        ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(want.data()), &len, reinterpret_cast<const Bytef*>(in.data()),
                            in.size(), level),
                  Z_OK);
        want.resize(len);
        EXPECT_EQ(out, want) << "zlib-" << level << " " << in.size() << " bytes";
      }
    }
    for (int level : {1, 3, 19}) {
      auto codec = formats::make_codec("zstd-" + std::to_string(level));
      for (const auto& in : inputs) {
        std::vector<std::byte> out(codec->max_encoded_size(in.size(), 4));
        out.resize(codec->encode(in, 4, out));
        std::vector<std::byte> want(ZSTD_compressBound(in.size()));
        want.resize(ZSTD_compress(want.data(), want.size(), in.data(), in.size(), level));
        EXPECT_EQ(out, want) << "zstd-" << level << " " << in.size() << " bytes";
      }
    }
  }
}

class WindowedPipeline : public ::testing::Test {
 protected:
  test::TempDir dir;
  // Tensors of 61 KB and 8 KB (above a 4 KiB max_block) and one of 240 bytes (below), written
  // contiguous (mapped) or deflated (read through HDF5 window by window).
  std::filesystem::path write(int deflate) {
    auto p = dir / ("t" + std::to_string(deflate) + ".h5");
    std::vector<formats::SynthSpec> specs;
    for (auto dims : {std::vector<std::int64_t>{2, 16, 24, 20}, std::vector<std::int64_t>{16, 128},
                      std::vector<std::int64_t>{6, 10}}) {
      formats::SynthSpec s;
      s.dims = dims;
      s.density = 0.25;
      specs.push_back(s);
    }
    write_synth_trace(p, specs, deflate);
    return p;
  }
};

TEST_F(WindowedPipeline, MappedCopiedAndDeflatedTensorsGiveTheWholeTensorNumbers) {
  Options o;
  o.max_block_bytes = 4096;
  o.dtypes = {"stored", "bfloat16"};
  o.chunk_bytes = 1000;
  o.verify = true;
  for (int deflate : {0, 3}) {
    const auto p = write(deflate);
    for (int mode : {0, 1, 2}) {  // mapped, pread, through HDF5
      o.read = mode == 0 ? ReadMode::mmap : mode == 1 ? ReadMode::pread : ReadMode::hdf5;
      o.threads = 2;
      const auto a = run_analysis({p}, o);
      ASSERT_EQ(a.tensors.size(), 3u);
      Options v = o;
      v.validate();
      TensorAnalyzer an(v);
      Workspace ws;
      formats::TraceReader r(p);
      for (std::size_t i = 0; i < 3; ++i) {
        const auto want = an.analyze(r.read(r.tensors()[i]), r.tensors()[i], ws, "t");
        for (std::size_t k = 0; k < want.size(); ++k) {
          EXPECT_EQ(a.tensors[i].variants[k].nonzeros, want[k].nonzeros);
          EXPECT_EQ(a.tensors[i].variants[k].zero_runs, want[k].zero_runs);
          for (std::size_t c = 0; c < want[k].codecs.size(); ++c)
            EXPECT_EQ(*a.tensors[i].variants[k].codecs[c].bytes, *want[k].codecs[c].bytes)
                << "deflate " << deflate << " mode " << mode << " tensor " << i;
        }
      }
    }
  }
}

// pread mode with zero-scan codecs only feeds tensors in 256 KiB pieces: zero runs, ZRLE tokens and
// --chunk chunks that straddle pieces must give the numbers of the whole tensor (and of --read mmap
// and hdf5), for 4- and 2-byte dtypes and a converted variant.
TEST(PreadPieces, StraddlingRunsAndChunksGiveTheMappedAndHdf5Json) {
  test::TempDir dir;
  const auto p = dir / "big.h5";
  std::vector<formats::SynthSpec> specs;
  for (auto [dt, density] : {std::pair{DType::f32, 0.3}, std::pair{DType::f16, 0.05}, std::pair{DType::f32, 0.0}}) {
    formats::SynthSpec s;
    s.dims = {4, 32, 64, 64};  // 2 MiB of fp32, 1 MiB of fp16: 8 and 4 pieces
    s.dtype = dt;
    s.density = density;
    specs.push_back(s);
  }
  write_synth_trace(p, specs);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{100000}}) {
    std::string first;
    for (int mode : {0, 1, 2}) {
      Options o;
      o.codecs = {"zvc", "zrle-2", "zrle-4", "zrle-16"};
      o.dtypes = {"stored", "bfloat16"};
      o.chunk_bytes = chunk;
      o.verify = true;
      o.threads = 2;
      o.read = mode == 0 ? ReadMode::mmap : mode == 1 ? ReadMode::pread : ReadMode::hdf5;
      const auto a = run_analysis({p}, o);
      EXPECT_EQ(a.stats.mapped_tensors, mode == 2 ? 0u : 3u) << mode;
      std::ostringstream os;
      write_json(os, a);
      if (first.empty()) first = os.str();
      EXPECT_EQ(os.str(), first) << "chunk " << chunk << " mode " << mode;
    }
  }
}

TEST_F(WindowedPipeline, PermutingABigTensorIsRefusedBeforeAnyWork) {
  const auto p = write(0);
  Options o;
  o.max_block_bytes = 4096;
  o.layouts = {"stored", "NHWC"};
  try {
    run_analysis({p}, o);
    FAIL() << "accepted";
  } catch (const formats::TraceError& e) {
    EXPECT_EQ(e.object(), "/tensors/0000000000");
    EXPECT_NE(std::string(e.what()).find("--layouts stored"), std::string::npos) << e.what();
  }
  o.keep_going = true;  // the 4-D tensor is left out; the 2-D ones need no permutation
  const auto a = run_analysis({p}, o);
  EXPECT_EQ(a.tensors.size(), 2u);
  ASSERT_EQ(a.traces[0].skipped.size(), 1u);
  EXPECT_EQ(a.traces[0].skipped[0].object, "/tensors/0000000000");
}

// A real 2 GiB + 4 KiB fp32 tensor (a sparse file: three nonzeros, the rest never written to disk)
// through `cdma analyze`: lz4's block limit is no longer hit, every size is the block rule's, and
// memory stays far below the tensor's size. zlib-6 is left out to keep the test short
// (bench/big_tensor.sh runs the default codecs).
TEST(BigTensor, TwoGibTensorIsAnalysedInBlocksWithBoundedMemory) {
  test::TempDir dir;
  const auto p = dir / "big.h5";
  const std::uint64_t n = (std::uint64_t{1} << 29) + 1024;
  const std::uint64_t nz[] = {0, std::uint64_t{1} << 27, n - 24};
  auto r = test::run_command(test::quote(test::h5py_python()) + " " +
                             test::quote(std::string(CDMA_TEST_ANALYZE_DIR) + "/py_big_trace.py") + " " +
                             test::quote(p.string()) + " " + std::to_string(n) + " " + std::to_string(nz[0]) + "," +
                             std::to_string(nz[1]) + "," + std::to_string(nz[2]));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto json = dir / "a.json";
  r = test::run_command(
      test::quote(test::h5py_python()) + " -c " +
      test::quote("import resource,subprocess,sys; rc=subprocess.run(sys.argv[1:]).returncode; "
                  "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)") +
      " " + test::cdma_binary() + " analyze -q --codecs zvc,zrle-4,zstd-1,lz4 --json " + test::quote(json.string()) +
      " " + test::quote(p.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto at = r.output.find("maxrss_kb ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const long rss_kb = std::stol(r.output.substr(at + 10));
  EXPECT_LT(rss_kb, 1L << 20) << "peak RSS " << rss_kb << " KB for a 2 GiB tensor";  // < 1 GiB

  std::ifstream f(json);
  const auto j = nlohmann::json::parse(f);
  ASSERT_EQ(j["tensor"].size(), 1u);
  const auto& t = j["tensor"][0];
  EXPECT_EQ(t["bytes"].get<std::uint64_t>(), 4 * n);
  EXPECT_EQ(t["nonzeros"].get<std::uint64_t>(), 3u);
  EXPECT_EQ(t["zero_runs"].get<std::uint64_t>(), 3u);
  EXPECT_EQ(t["codecs"]["zvc"]["bytes"].get<std::uint64_t>(), 4 * ((n + 31) / 32) + 4 * 3);
  std::uint64_t tokens = 0;
  for (std::uint64_t len : {nz[1] - nz[0] - 1, nz[2] - nz[1] - 1, n - 1 - nz[2]}) tokens += (len + 15) / 16;
  EXPECT_EQ(t["codecs"]["zrle-4"]["bytes"].get<std::uint64_t>(), (3 * 33 + tokens * 5 + 7) / 8);
  // Byte codecs: 33 blocks of 64 MiB (the last 4 KiB): blocks 0 and 8 start with the 1.0f, block
  // 32 holds it at element 1000, the other 30 are zeros.
  const std::size_t block = std::size_t{64} << 20;
  std::vector<std::byte> b(block, std::byte{0});
  const float one = 1.0f;
  auto sizes = [&](auto size_of) {
    std::size_t total = 30 * size_of(std::span<const std::byte>(b));
    std::memcpy(b.data(), &one, 4);
    total += 2 * size_of(std::span<const std::byte>(b));
    std::memset(b.data(), 0, 4);
    std::vector<std::byte> last(4096, std::byte{0});
    std::memcpy(last.data() + 4 * 1000, &one, 4);
    return total + size_of(std::span<const std::byte>(last));
  };
  EXPECT_EQ(t["codecs"]["lz4"]["bytes"].get<std::size_t>(), sizes([](auto d) { return lz4_size(d); }));
  EXPECT_EQ(t["codecs"]["zstd-1"]["bytes"].get<std::size_t>(), sizes([](auto d) { return zstd_size(d, 1); }));
  EXPECT_EQ(j["options"]["max_block_bytes"].get<std::size_t>(), block);
}

}  // namespace
}  // namespace cdma::analyze
