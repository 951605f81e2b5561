#include <cdma/analyze/tensor.hpp>
#include <cdma/analyze/transform.hpp>
#include <cdma/formats/zero_scan.hpp>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace cdma::analyze {

using formats::DType;
using formats::Layout;

namespace {
// CPU time of the calling thread: what the codecs cost, unaffected by other processes on a busy machine.
std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool is_zero_elem(const std::byte* p, std::size_t w) {
  for (std::size_t i = 0; i < w; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}
}  // namespace

TensorAnalyzer::TensorAnalyzer(const Options& opts) : opts_(opts) {
  for (const auto& d : opts_.dtypes)
    for (const auto& l : opts_.layouts) variants_.push_back({l, d});
  for (const auto& spec : opts_.codecs) {
    CodecSlot s;
    s.codec = formats::make_codec(spec);
    s.name = s.codec->name();
    if (s.name == "zvc") {
      s.kind = CodecSlot::zvc;
    } else if (s.name.rfind("zrle-", 0) == 0) {
      s.kind = CodecSlot::zrle;
      s.k = std::stoi(s.name.substr(5));
    }
    codec_names_.push_back(s.name);
    slots_.push_back(std::move(s));
  }
}

TensorAnalyzer::~TensorAnalyzer() = default;

void TensorAnalyzer::measure(std::span<const std::byte> data, std::size_t w, VariantMeasures& out, Workspace& ws,
                             const std::string& where) const {
  const std::size_t n = data.size() / w;
  const std::size_t chunk_elems = opts_.chunk_bytes ? std::max<std::size_t>(1, opts_.chunk_bytes / w) : n;
  out.elements = n;
  out.bytes = data.size();
  out.codecs.assign(slots_.size(), CodecSize{std::uint64_t{0}, true});

  // Zero statistics, and the ZVC / ZRLE sizes that follow from them, chunk by chunk (one chunk
  // when not chunking). Runs cut by a chunk edge are joined again for the tensor's zero_runs.
  auto t0 = thread_cpu_ns();
  std::uint64_t nnz = 0, runs = 0;
  for (std::size_t first = 0; first < n || (n == 0 && first == 0); first += chunk_elems) {
    const std::size_t len = std::min(chunk_elems, n - first);
    auto chunk = data.subspan(first * w, len * w);
    const formats::ZeroScan sc = formats::zero_scan(chunk, w);
    nnz += sc.nonzeros;
    runs += sc.zero_runs;
    if (first > 0 && len > 0 && is_zero_elem(chunk.data(), w) && is_zero_elem(chunk.data() - w, w)) --runs;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const auto& s = slots_[i];
      if (s.kind == CodecSlot::zvc) *out.codecs[i].bytes += formats::zvc_size(len, sc.nonzeros, w);
      if (s.kind == CodecSlot::zrle) *out.codecs[i].bytes += formats::zrle_size(sc, w, s.k);
    }
    if (n == 0) break;
  }
  out.nonzeros = nnz;
  out.zero_runs = runs;
  ws.codec_ns += thread_cpu_ns() - t0;

  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& s = slots_[i];
    if (s.kind != CodecSlot::bytes) continue;
    t0 = thread_cpu_ns();
    out.codecs[i].bytes = formats::chunked_compressed_size(*s.codec, data, w, opts_.chunk_bytes);
    ws.codec_ns += thread_cpu_ns() - t0;
  }

  if (!opts_.verify) return;
  // Round trip of every encoding, chunk by chunk as counted; the encoded size must also agree with
  // the size counted above (for ZVC/ZRLE: the scan's formula against the real encoder).
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& s = slots_[i];
    std::uint64_t total = 0;
    for (std::size_t first = 0; first < n || (n == 0 && first == 0); first += chunk_elems) {
      const std::size_t len = std::min(chunk_elems, n - first);
      auto chunk = data.subspan(first * w, len * w);
      ws.encoded.resize(s.codec->max_encoded_size(chunk.size(), w));
      const std::size_t enc = s.codec->encode(chunk, w, ws.encoded);
      total += enc;
      ws.decoded.resize(chunk.size());
      try {
        s.codec->decode(std::span<const std::byte>(ws.encoded.data(), enc), w, ws.decoded);
      } catch (const formats::Error& e) {
        throw VerifyError("verify: " + where + ": " + s.name + " cannot decode its own encoding: " + e.what());
      }
      if (!chunk.empty() && std::memcmp(ws.decoded.data(), chunk.data(), chunk.size()) != 0)
        throw VerifyError("verify: " + where + ": " + s.name + " decodes to different bytes (elements " +
                          std::to_string(first) + ".." + std::to_string(first + len) + ")");
      if (n == 0) break;
    }
    if (total != *out.codecs[i].bytes)
      throw VerifyError("verify: " + where + ": " + s.name + " encodes to " + std::to_string(total) + " bytes but " +
                        std::to_string(*out.codecs[i].bytes) + " were counted");
  }
}

std::vector<VariantMeasures> TensorAnalyzer::analyze(std::span<const std::byte> data, const formats::TensorMeta& meta,
                                                     Workspace& ws, const std::string& where) const {
  if (static_cast<std::int64_t>(data.size()) != meta.bytes())
    throw formats::Error(where + ": " + std::to_string(data.size()) + " bytes given, " + std::to_string(meta.bytes()) +
                         " expected from its dimensions and dtype");
  std::vector<VariantMeasures> out(variants_.size());
  std::string cached_dtype;
  std::span<const std::byte> conv = data;
  DType conv_dtype = meta.dtype;
  for (std::size_t v = 0; v < variants_.size(); ++v) {
    const Variant& var = variants_[v];
    VariantMeasures& m = out[v];
    if (v == 0 || var.dtype != cached_dtype) {
      cached_dtype = var.dtype;
      conv = data;
      conv_dtype = meta.dtype;
      if (var.dtype != "stored") {
        const DType target = *formats::parse_dtype(var.dtype);
        if (target != meta.dtype && convert_dtype(data, meta.dtype, target, ws.converted)) {
          conv = ws.converted;
          conv_dtype = target;
        }
      }
    }
    std::span<const std::byte> src = conv;
    Layout actual = meta.layout;
    if (var.layout != "stored") {
      const Layout target = *formats::parse_layout(var.layout);
      if (meta.layout != Layout::NC && meta.dims.size() == 4 && target != meta.layout) {
        permute_layout(conv, meta.dims, meta.layout, target, formats::dtype_size(conv_dtype), ws.permuted);
        src = ws.permuted;
        actual = target;
      }
    }
    m.actual_layout = std::string(formats::to_string(actual));
    m.actual_dtype = std::string(formats::to_string(conv_dtype));
    measure(src, formats::dtype_size(conv_dtype), m, ws, where);
  }
  return out;
}

std::vector<VariantMeasures> TensorAnalyzer::analyze_stats(const formats::StatsRow& row) const {
  const auto dt = formats::parse_dtype(row.dtype);
  const std::string where = "/stats row (iteration " + std::to_string(row.iteration) + ", layer '" + row.layer + "')";
  if (!dt) throw formats::Error(where + ": unknown dtype '" + row.dtype + "'");
  const std::uint64_t n = static_cast<std::uint64_t>(row.elements);
  const std::uint64_t nnz = static_cast<std::uint64_t>(row.nonzeros);
  const std::uint64_t runs = static_cast<std::uint64_t>(row.zero_runs);
  const std::uint64_t zeros = n - nnz;
  if (row.elements < 0 || row.nonzeros < 0 || row.zero_runs < 0 || nnz > n || runs > zeros ||
      (zeros > 0 && runs == 0) || runs > nnz + 1)
    throw formats::Error(where + ": inconsistent counts (elements " + std::to_string(row.elements) + ", nonzeros " +
                         std::to_string(row.nonzeros) + ", zero_runs " + std::to_string(row.zero_runs) + ")");
  const std::size_t w = formats::dtype_size(*dt);
  std::vector<VariantMeasures> out(variants_.size());
  for (std::size_t v = 0; v < variants_.size(); ++v) {
    const Variant& var = variants_[v];
    VariantMeasures& m = out[v];
    if (var.dtype != "stored" && var.dtype != row.dtype) {
      m.present = false;
      continue;
    }
    m.actual_layout = "stored";
    m.actual_dtype = row.dtype;
    m.elements = n;
    m.bytes = n * w;
    m.nonzeros = nnz;
    m.zero_runs = runs;
    for (const auto& s : slots_) {
      CodecSize c;
      if (s.kind == CodecSlot::zvc) {
        c.bytes = formats::zvc_size(n, nnz, w);
      } else if (s.kind == CodecSlot::zrle && var.layout == "stored") {
        // Tokens = sum over runs of ceil(L / 2^k): at least max(runs, ceil(zeros / 2^k)), at most
        // runs + floor((zeros - runs) / 2^k). Exact when the two agree; else the lower bound.
        const std::uint64_t m2 = std::uint64_t{1} << s.k;
        const std::uint64_t lo = std::max(runs, (zeros + m2 - 1) / m2);
        const std::uint64_t hi = runs + (zeros - runs) / m2;
        formats::ZeroScan sc;
        sc.elements = n;
        sc.nonzeros = nnz;
        sc.zero_runs = runs;
        sc.zrle_tokens[static_cast<std::size_t>(s.k)] = lo;
        c.bytes = formats::zrle_size(sc, w, s.k);
        c.exact = lo == hi;
      }  // byte codecs (and ZRLE of another layout): unknown
      m.codecs.push_back(c);
    }
  }
  return out;
}

}  // namespace cdma::analyze
