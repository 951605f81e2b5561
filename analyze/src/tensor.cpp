#include <cdma/analyze/tensor.hpp>
#include <cdma/analyze/transform.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/formats/trace.hpp>
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

// Zero statistics of a stretch of elements plus the lengths of the zero runs it starts and ends
// with, so that the statistics of two adjacent stretches can be joined exactly.
struct ScanPiece {
  formats::ZeroScan s;
  std::uint64_t lead = 0, trail = 0;  // == s.elements when every element is zero
};

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

std::uint64_t leading_zero_elements(std::span<const std::byte> d, std::size_t w) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < d.size() && is_zero_elem(d.data() + i, w); i += w) ++n;
  return n;
}
std::uint64_t trailing_zero_elements(std::span<const std::byte> d, std::size_t w) {
  std::uint64_t n = 0;
  for (std::size_t i = d.size(); i >= w && is_zero_elem(d.data() + i - w, w); i -= w) ++n;
  return n;
}

ScanPiece scan_piece(std::span<const std::byte> d, std::size_t w, const formats::ZeroScan& s) {
  ScanPiece p{s, 0, 0};
  p.lead = leading_zero_elements(d, w);
  p.trail = p.lead == s.elements ? p.lead : trailing_zero_elements(d, w);
  return p;
}

// a := a followed by b. A zero run cut between them is counted once, with its ZRLE tokens.
void join(ScanPiece& a, const ScanPiece& b) {
  if (b.s.elements == 0) return;
  if (a.s.elements == 0) {
    a = b;
    return;
  }
  const bool a_zero = a.s.nonzeros == 0, b_zero = b.s.nonzeros == 0;
  formats::ZeroScan r = a.s;
  r.elements += b.s.elements;
  r.nonzeros += b.s.nonzeros;
  r.zero_runs += b.s.zero_runs;
  for (int k = formats::kZrleMinK; k <= formats::kZrleMaxK; ++k) r.zrle_tokens[k] += b.s.zrle_tokens[k];
  if (a.trail > 0 && b.lead > 0) {
    --r.zero_runs;
    for (int k = formats::kZrleMinK; k <= formats::kZrleMaxK; ++k) {
      const std::uint64_t m = std::uint64_t{1} << k;
      r.zrle_tokens[k] = r.zrle_tokens[k] - ceil_div(a.trail, m) - ceil_div(b.lead, m) + ceil_div(a.trail + b.lead, m);
    }
  }
  const std::uint64_t lead = a_zero ? a.s.elements + b.lead : a.lead;
  const std::uint64_t trail = b_zero ? a.trail + b.s.elements : b.trail;
  a = ScanPiece{r, lead, trail};
}
}  // namespace

// The measures of one variant of a tensor, built from consecutive pieces (each a whole number of
// byte-codec blocks, the last may be short). ZVC and ZRLE are counted per chunk (--chunk; the whole
// tensor without it), joining the scans of pieces a chunk spans; byte codecs per block
// (min(chunk, max_block_bytes)); zero runs and nonzeros are the tensor's own.
class TensorAnalyzer::VariantStream {
 public:
  VariantStream(const TensorAnalyzer& an, std::size_t width, std::uint64_t elements, VariantMeasures& out)
      : an_(an), w_(width), n_(elements), out_(out) {
    const std::uint64_t max_elems = std::max<std::uint64_t>(1, an.opts_.max_block_bytes / w_);
    chunk_ = an.opts_.chunk_bytes ? std::max<std::uint64_t>(1, an.opts_.chunk_bytes / w_) : 0;
    block_ = chunk_ ? std::min(chunk_, max_elems) : max_elems;
    out_.elements = n_;
    out_.bytes = n_ * w_;
    out_.codecs.assign(an.slots_.size(), CodecSize{std::uint64_t{0}, true});
  }

  // Elements per piece: a whole number of blocks, at most max_block_bytes.
  static std::uint64_t window(const TensorAnalyzer& an, std::size_t w) {
    const std::uint64_t max_elems = std::max<std::uint64_t>(1, an.opts_.max_block_bytes / w);
    const std::uint64_t chunk = an.opts_.chunk_bytes ? std::max<std::uint64_t>(1, an.opts_.chunk_bytes / w) : 0;
    const std::uint64_t block = chunk ? std::min(chunk, max_elems) : max_elems;
    return block * std::max<std::uint64_t>(1, max_elems / block);
  }

  void feed(std::span<const std::byte> piece, Workspace& ws, const std::string& where) {
    const std::uint64_t n = piece.size() / w_;
    auto t0 = thread_cpu_ns();
    for (std::uint64_t off = 0; off < n;) {
      const std::uint64_t chunk_first = chunk_ ? pos_ / chunk_ * chunk_ : 0;
      const std::uint64_t chunk_end = chunk_ ? std::min(n_, chunk_first + chunk_) : n_;
      const std::uint64_t len = std::min(n - off, chunk_end - pos_);
      const auto seg = piece.subspan(off * w_, len * w_);
      const formats::ZeroScan sc = formats::zero_scan(seg, w_);
      nnz_ += sc.nonzeros;
      runs_ += sc.zero_runs;
      if (pos_ > 0 && last_zero_ && is_zero_elem(seg.data(), w_)) --runs_;
      last_zero_ = is_zero_elem(seg.data() + seg.size() - w_, w_);
      if (pos_ == chunk_first && pos_ + len == chunk_end) {
        add_counted(len, sc);  // the common case: a whole chunk in one piece
      } else {
        join(chunk_acc_, scan_piece(seg, w_, sc));
        if (pos_ + len == chunk_end) {
          add_counted(chunk_acc_.s.elements, chunk_acc_.s);
          chunk_acc_ = {};
        }
      }
      if (an_.opts_.verify) verify_counted(seg, sc, ws, where, pos_);
      pos_ += len;
      off += len;
    }
    ws.codec_ns += thread_cpu_ns() - t0;
    feed_blocks(piece, ws, where);
  }

  void finish(Workspace& ws, const std::string& where) {
    if (!carry_.empty()) add_bytes(carry_, ws, where);
    carry_.clear();
    if (n_ == 0) {
      // An empty tensor: ZVC and ZRLE are 0 bytes; byte codecs still write their headers.
      for (std::size_t i = 0; i < an_.slots_.size(); ++i)
        if (an_.slots_[i].kind != CodecSlot::bytes) out_.codecs[i].bytes = 0;
      add_bytes({}, ws, where);
    }
    out_.nonzeros = nnz_;
    out_.zero_runs = runs_;
  }

 private:
  // Byte codecs see whole blocks: a block that straddles two pieces is gathered in carry_ (pieces
  // cut at block edges, as windows of the stored dtype are, need no copy).
  void feed_blocks(std::span<const std::byte> piece, Workspace& ws, const std::string& where) {
    if (an_.counts_only()) return;  // no byte codec: nothing to gather (pieces of any size cost nothing)
    const std::size_t bb = static_cast<std::size_t>(block_) * w_;
    const bool at_end = pos_ == n_;
    std::size_t off = 0;
    if (!carry_.empty()) {
      const std::size_t take = std::min(bb - carry_.size(), piece.size());
      carry_.insert(carry_.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(take));
      off = take;
      if (carry_.size() == bb || (off == piece.size() && at_end)) {
        add_bytes(carry_, ws, where);
        carry_.clear();
      }
    }
    for (; piece.size() - off >= bb; off += bb) add_bytes(piece.subspan(off, bb), ws, where);
    if (off < piece.size()) {
      if (at_end) {
        add_bytes(piece.subspan(off), ws, where);
      } else {
        carry_.assign(piece.begin() + static_cast<std::ptrdiff_t>(off), piece.end());
      }
    }
  }

  void add_counted(std::uint64_t len, const formats::ZeroScan& sc) {
    for (std::size_t i = 0; i < an_.slots_.size(); ++i) {
      const auto& s = an_.slots_[i];
      if (s.kind == CodecSlot::zvc) *out_.codecs[i].bytes += formats::zvc_size(len, sc.nonzeros, w_);
      if (s.kind == CodecSlot::zrle) *out_.codecs[i].bytes += formats::zrle_size(sc, w_, s.k);
    }
  }

  void add_bytes(std::span<const std::byte> block, Workspace& ws, const std::string& where) {
    const std::uint64_t first = bytes_done_ / w_;
    bytes_done_ += block.size();
    for (std::size_t i = 0; i < an_.slots_.size(); ++i) {
      const auto& s = an_.slots_[i];
      if (s.kind != CodecSlot::bytes) continue;
      const auto t0 = thread_cpu_ns();
      const std::size_t size = s.codec->compressed_size(block, w_);
      ws.codec_ns += thread_cpu_ns() - t0;
      *out_.codecs[i].bytes += size;
      if (an_.opts_.verify) round_trip(s, block, size, ws, where, first);
    }
  }

  // --verify of ZVC and ZRLE on one piece of a chunk: the real encoder's size must be the size the
  // scan gives for that piece, and the encoding must decode to the piece.
  void verify_counted(std::span<const std::byte> seg, const formats::ZeroScan& sc, Workspace& ws,
                      const std::string& where, std::uint64_t first) const {
    for (const auto& s : an_.slots_) {
      if (s.kind == CodecSlot::bytes) continue;
      const std::uint64_t counted =
          s.kind == CodecSlot::zvc ? formats::zvc_size(sc.elements, sc.nonzeros, w_) : formats::zrle_size(sc, w_, s.k);
      round_trip(s, seg, counted, ws, where, first);
    }
  }

  void round_trip(const CodecSlot& s, std::span<const std::byte> seg, std::uint64_t counted, Workspace& ws,
                  const std::string& where, std::uint64_t first) const {
    ws.encoded.resize(s.codec->max_encoded_size(seg.size(), w_));
    const std::size_t enc = s.codec->encode(seg, w_, ws.encoded);
    ws.decoded.resize(seg.size());
    try {
      s.codec->decode(std::span<const std::byte>(ws.encoded.data(), enc), w_, ws.decoded);
    } catch (const formats::Error& e) {
      throw VerifyError("verify: " + where + ": " + s.name + " cannot decode its own encoding: " + e.what());
    }
    const std::uint64_t last = first + seg.size() / w_;
    if (!seg.empty() && std::memcmp(ws.decoded.data(), seg.data(), seg.size()) != 0)
      throw VerifyError("verify: " + where + ": " + s.name + " decodes to different bytes (elements " +
                        std::to_string(first) + ".." + std::to_string(last) + ")");
    if (enc != counted)
      throw VerifyError("verify: " + where + ": " + s.name + " encodes elements " + std::to_string(first) + ".." +
                        std::to_string(last) + " to " + std::to_string(enc) + " bytes but " + std::to_string(counted) +
                        " were counted");
  }

  const TensorAnalyzer& an_;
  std::size_t w_;
  std::uint64_t n_;
  VariantMeasures& out_;
  std::uint64_t chunk_ = 0, block_ = 0;  // elements; chunk_ 0 = the whole tensor
  std::uint64_t pos_ = 0;                // elements fed so far
  std::uint64_t nnz_ = 0, runs_ = 0;
  bool last_zero_ = false;
  ScanPiece chunk_acc_;           // the chunk being joined from several pieces
  std::vector<std::byte> carry_;  // start of a byte-codec block whose end is in the next piece
  std::uint64_t bytes_done_ = 0;  // bytes given to the byte codecs so far
};

TensorAnalyzer::TensorAnalyzer(const Options& opts) : opts_(opts) {
  if (opts_.max_block_bytes < 16)
    throw formats::Error("max_block_bytes " + std::to_string(opts_.max_block_bytes) + " is too small (>= 16)");
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

namespace {
// The dtype a variant analyses: the conversion target when it applies, else the stored one.
struct Target {
  std::optional<VariantDtype> convert;  // set when the variant converts the tensor
  std::string name;                     // actual_dtype
  std::size_t width = 0;                // bytes per element after conversion
};
Target variant_target(const Variant& v, DType stored) {
  const bool is_float = stored == DType::f32 || stored == DType::f16 || stored == DType::bf16;
  const auto to = v.dtype == "stored" ? std::nullopt : parse_variant_dtype(v.dtype);
  if (!to || !is_float || v.dtype == formats::to_string(stored))
    return {std::nullopt, std::string(formats::to_string(stored)), formats::dtype_size(stored)};
  return {to, v.dtype, variant_width(*to)};
}
// Whether a variant permutes the tensor (4-D, a layout other than the stored one).
bool permutes(const Variant& v, const formats::TensorMeta& meta) {
  if (v.layout == "stored" || meta.layout == Layout::NC || meta.dims.size() != 4) return false;
  return *formats::parse_layout(v.layout) != meta.layout;
}
}  // namespace

std::vector<VariantMeasures> TensorAnalyzer::analyze(std::span<const std::byte> data, const formats::TensorMeta& meta,
                                                     Workspace& ws, const std::string& where) const {
  if (meta.bytes() < 0 || static_cast<std::int64_t>(data.size()) != meta.bytes())
    throw formats::Error(where + ": " + std::to_string(data.size()) + " bytes given, " + std::to_string(meta.bytes()) +
                         " expected from its dimensions and dtype");
  std::vector<VariantMeasures> out(variants_.size());
  std::string cached_dtype;
  std::span<const std::byte> conv = data;
  Target conv_to;
  for (std::size_t v = 0; v < variants_.size(); ++v) {
    const Variant& var = variants_[v];
    VariantMeasures& m = out[v];
    if (v == 0 || var.dtype != cached_dtype) {
      cached_dtype = var.dtype;
      conv_to = variant_target(var, meta.dtype);
      conv = data;
      if (conv_to.convert && convert_variant(data, meta.dtype, *conv_to.convert, ws.converted)) conv = ws.converted;
    }
    const std::size_t w = conv_to.width;
    std::span<const std::byte> src = conv;
    Layout actual = meta.layout;
    if (permutes(var, meta)) {
      const Layout target = *formats::parse_layout(var.layout);
      permute_layout(conv, meta.dims, meta.layout, target, w, ws.permuted);
      src = ws.permuted;
      actual = target;
    }
    m.actual_layout = std::string(formats::to_string(actual));
    m.actual_dtype = conv_to.name;
    VariantStream vs(*this, w, src.size() / w, m);
    const std::uint64_t win = VariantStream::window(*this, w) * w;
    for (std::uint64_t off = 0; off < src.size(); off += win)
      vs.feed(src.subspan(off, std::min<std::uint64_t>(win, src.size() - off)), ws, where);
    vs.finish(ws, where);
  }
  return out;
}

bool TensorAnalyzer::needs_windows(const formats::TensorMeta& meta) const noexcept {
  return meta.bytes() > static_cast<std::int64_t>(opts_.max_block_bytes);
}

std::optional<std::string> TensorAnalyzer::why_not_windowed(const formats::TensorMeta& meta) const {
  for (const auto& v : variants_)
    if (permutes(v, meta))
      return "its " + formats::human_bytes(static_cast<double>(meta.bytes())) + " exceed the " +
             formats::human_bytes(static_cast<double>(opts_.max_block_bytes)) +
             " the analyzer holds at once, and --layouts " + v.layout +
             " permutes the whole tensor in memory; analyse it with --layouts stored";
  return std::nullopt;
}

bool TensorAnalyzer::counts_only() const noexcept {
  for (const auto& s : slots_)
    if (s.kind == CodecSlot::bytes) return false;
  return true;
}

std::uint64_t TensorAnalyzer::window_elements(const formats::TensorMeta& meta) const noexcept {
  return VariantStream::window(*this, formats::dtype_size(meta.dtype));
}

TensorStream::TensorStream(const TensorAnalyzer& an, const formats::TensorMeta& meta, Workspace& ws, std::string where)
    : an_(an), meta_(meta), ws_(ws), where_(std::move(where)) {
  if (meta.bytes() < 0) throw formats::Error(where_ + ": invalid dimensions");
  if (auto why = an.why_not_windowed(meta)) throw formats::Error(where_ + ": " + *why);
  out_.resize(an.variants_.size());
  for (std::size_t v = 0; v < an.variants_.size(); ++v) {
    const Target to = variant_target(an.variants_[v], meta.dtype);
    out_[v].actual_layout = std::string(formats::to_string(meta.layout));
    out_[v].actual_dtype = to.name;
    streams_.push_back(std::make_unique<TensorAnalyzer::VariantStream>(
        an, to.width, static_cast<std::uint64_t>(meta.elements()), out_[v]));
  }
}

TensorStream::~TensorStream() = default;

void TensorStream::feed(std::span<const std::byte> window) {
  const std::size_t w = formats::dtype_size(meta_.dtype);
  const auto total = static_cast<std::uint64_t>(meta_.elements());
  const std::uint64_t n = window.size() / w;
  // Pieces of any whole number of elements: the variant streams join zero runs and ZVC/ZRLE chunks
  // across pieces and gather byte-codec blocks that straddle them (window-sized pieces need no copy).
  if (window.size() % w != 0 || fed_ + n > total)
    throw formats::Error(where_ + ": window of " + std::to_string(window.size()) + " bytes at element " +
                         std::to_string(fed_) + " does not fit the tensor's windows");
  std::string cached_dtype;
  std::span<const std::byte> conv = window;
  for (std::size_t v = 0; v < an_.variants_.size(); ++v) {
    const Variant& var = an_.variants_[v];
    if (v == 0 || var.dtype != cached_dtype) {
      cached_dtype = var.dtype;
      conv = window;
      const Target to = variant_target(var, meta_.dtype);
      if (to.convert && convert_variant(window, meta_.dtype, *to.convert, ws_.converted)) conv = ws_.converted;
    }
    streams_[v]->feed(conv, ws_, where_);
  }
  fed_ += n;
}

std::vector<VariantMeasures> TensorStream::finish() {
  if (fed_ != static_cast<std::uint64_t>(meta_.elements()))
    throw formats::Error(where_ + ": only " + std::to_string(fed_) + " of " + std::to_string(meta_.elements()) +
                         " elements were fed");
  for (auto& s : streams_) s->finish(ws_, where_);
  return std::move(out_);
}

std::vector<VariantMeasures> TensorAnalyzer::analyze_stats(const formats::StatsRow& row) const {
  const std::string where = "/stats row (iteration " + std::to_string(row.iteration) + ", layer '" + row.layer + "')";
  if (const auto why = formats::stats_row_problem(row)) throw formats::Error(where + ": " + *why);
  const auto dt = formats::parse_dtype(row.dtype);
  const std::uint64_t n = static_cast<std::uint64_t>(row.elements);
  const std::uint64_t nnz = static_cast<std::uint64_t>(row.nonzeros);
  const std::uint64_t runs = static_cast<std::uint64_t>(row.zero_runs);
  const std::uint64_t zeros = n - nnz;
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
