// Part <-> bytes (encode_part / decode_part): a flat little-endian record, integers as 64-bit
// words, doubles by their bits, strings and vectors as a count then their items. The two
// processes run the same build, so the record has a magic and a version but no schema evolution.
#include <cdma/analyze/parts.hpp>
#include <cdma/formats/error.hpp>

#include <bit>
#include <cstring>

namespace cdma::analyze {

namespace {

constexpr std::uint64_t kMagic = 0x31545241'50414d44ULL;  // "DMAPART1"

class Writer {
 public:
  void u(std::uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(b, 8);
  }
  void i(std::int64_t v) { u(static_cast<std::uint64_t>(v)); }
  void b(bool v) { u(v ? 1 : 0); }
  void d(double v) { u(std::bit_cast<std::uint64_t>(v)); }
  void s(const std::string& v) {
    u(v.size());
    out_.append(v);
  }
  void os(const std::optional<std::string>& v) {
    b(v.has_value());
    if (v) s(*v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::uint64_t u() {
    if (in_.size() - pos_ < 8) bad("truncated");
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + k])) << (8 * k);
    pos_ += 8;
    return v;
  }
  std::int64_t i() { return static_cast<std::int64_t>(u()); }
  int i32() { return static_cast<int>(i()); }
  bool b() {
    const auto v = u();
    if (v > 1) bad("a flag is neither 0 nor 1");
    return v == 1;
  }
  double d() { return std::bit_cast<double>(u()); }
  std::string s() {
    const auto n = count(1);
    std::string v(in_.substr(pos_, n));
    pos_ += n;
    return v;
  }
  std::optional<std::string> os() {
    if (!b()) return std::nullopt;
    return s();
  }
  // A count of items of at least `min_bytes` each that the rest of the input can hold.
  std::size_t count(std::size_t min_bytes) {
    const auto n = u();
    if (n > (in_.size() - pos_) / min_bytes) bad("a count exceeds the data");
    return static_cast<std::size_t>(n);
  }
  void done() const {
    if (pos_ != in_.size()) bad("trailing bytes");
  }
  [[noreturn]] void bad(const char* why) const {
    throw formats::Error(std::string("cannot decode an analysis part received from another process: ") + why +
                         " at byte " + std::to_string(pos_));
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

void put(Writer& w, const Skipped& k) {
  w.s(k.object);
  w.s(k.reason);
}
Skipped get_skipped(Reader& r) {
  Skipped k;
  k.object = r.s();
  k.reason = r.s();
  return k;
}

void put(Writer& w, const TensorResult& t) {
  const auto& i = t.info;
  w.i(i.trace);
  w.s(i.name);
  w.b(i.from_stats);
  w.i(i.iteration);
  w.s(i.layer);
  w.i(i.layer_index);
  w.s(i.op);
  w.s(i.role);
  w.s(i.phase);
  w.b(i.offload);
  w.u(i.dims.size());
  for (auto x : i.dims) w.i(x);
  w.s(i.stored_dtype);
  w.s(i.stored_layout);
  w.u(t.variants.size());
  for (const auto& v : t.variants) {
    w.b(v.present);
    w.s(v.actual_layout);
    w.s(v.actual_dtype);
    w.u(v.elements);
    w.u(v.bytes);
    w.u(v.nonzeros);
    w.u(v.zero_runs);
    w.u(v.codecs.size());
    for (const auto& c : v.codecs) {
      w.b(c.bytes.has_value());
      w.u(c.bytes.value_or(0));
      w.b(c.exact);
    }
  }
}
TensorResult get_tensor(Reader& r) {
  TensorResult t;
  auto& i = t.info;
  i.trace = r.i32();
  i.name = r.s();
  i.from_stats = r.b();
  i.iteration = r.i();
  i.layer = r.s();
  i.layer_index = static_cast<std::int32_t>(r.i());
  i.op = r.s();
  i.role = r.s();
  i.phase = r.s();
  i.offload = r.b();
  i.dims.resize(r.count(8));
  for (auto& x : i.dims) x = r.i();
  i.stored_dtype = r.s();
  i.stored_layout = r.s();
  t.variants.resize(r.count(8 * 8));
  for (auto& v : t.variants) {
    v.present = r.b();
    v.actual_layout = r.s();
    v.actual_dtype = r.s();
    v.elements = r.u();
    v.bytes = r.u();
    v.nonzeros = r.u();
    v.zero_runs = r.u();
    v.codecs.resize(r.count(3 * 8));
    for (auto& c : v.codecs) {
      const bool known = r.b();
      const auto n = r.u();
      if (known) c.bytes = n;
      c.exact = r.b();
    }
  }
  return t;
}

void put(Writer& w, const TraceSummary& s) {
  w.i(s.index);
  w.s(s.path);
  w.b(s.opened);
  w.os(s.model);
  w.s(s.source);
  w.b(s.complete);
  w.i(s.tensors);
  w.i(s.stats_rows);
  w.i(s.filtered_out);
  w.i(s.not_offloaded);
  w.b(s.offload_attribute);
  w.u(s.skipped.size());
  for (const auto& k : s.skipped) put(w, k);
  w.u(s.warnings.size());
  for (const auto& x : s.warnings) w.s(x);
}
TraceSummary get_summary(Reader& r) {
  TraceSummary s;
  s.index = r.i32();
  s.path = r.s();
  s.opened = r.b();
  s.model = r.os();
  s.source = r.s();
  s.complete = r.b();
  s.tensors = r.i();
  s.stats_rows = r.i();
  s.filtered_out = r.i();
  s.not_offloaded = r.i();
  s.offload_attribute = r.b();
  s.skipped.resize(r.count(16));
  for (auto& k : s.skipped) k = get_skipped(r);
  s.warnings.resize(r.count(8));
  for (auto& x : s.warnings) x = r.s();
  return s;
}

void put_skips(Writer& w, const std::vector<Skipped>& v) {
  w.u(v.size());
  for (const auto& k : v) put(w, k);
}
std::vector<Skipped> get_skips(Reader& r) {
  std::vector<Skipped> v(r.count(16));
  for (auto& k : v) k = get_skipped(r);
  return v;
}
void put_slot_skips(Writer& w, const std::vector<SlotSkip>& v) {
  w.u(v.size());
  for (const auto& k : v) {
    w.u(k.slot);
    put(w, k.skip);
  }
}
std::vector<SlotSkip> get_slot_skips(Reader& r) {
  std::vector<SlotSkip> v(r.count(24));
  for (auto& k : v) {
    k.slot = r.u();
    k.skip = get_skipped(r);
  }
  return v;
}

}  // namespace

std::string encode_part(const Part& p) {
  Writer w;
  w.u(kMagic);
  w.i(p.index);
  w.i(p.count);
  w.u(p.first_slot);
  w.u(p.last_slot);
  w.u(p.planned);
  w.u(p.plan_digest);
  w.u(p.codec_names.size());
  for (const auto& c : p.codec_names) w.s(c);
  w.u(p.variants.size());
  for (const auto& v : p.variants) {
    w.s(v.layout);
    w.s(v.dtype);
  }
  w.u(p.traces.size());
  for (const auto& t : p.traces) {
    put(w, t.summary);
    put_skips(w, t.plan_skips);
    put_slot_skips(w, t.read_skips);
    put_skips(w, t.stats_skips);
    put_slot_skips(w, t.worker_skips);
    w.u(t.stats.size());
    for (const auto& r : t.stats) put(w, r);
  }
  w.u(p.tensors.size());
  for (const auto& r : p.tensors) put(w, r);
  w.b(p.interrupted);
  const auto& s = p.stats;
  w.u(s.threads);
  w.d(s.wall_s);
  w.d(s.cpu_s);
  w.d(s.codec_s);
  w.d(s.read_s);
  w.u(s.mapped_tensors);
  w.u(s.bytes);
  w.b(p.error.has_value());
  if (p.error) {
    w.u(p.error->order);
    w.b(p.error->verify);
    w.s(p.error->message);
  }
  return w.take();
}

Part decode_part(std::string_view bytes) {
  Reader r(bytes);
  if (r.u() != kMagic) r.bad("not an analysis part (bad magic)");
  Part p;
  p.index = r.i32();
  p.count = r.i32();
  p.first_slot = r.u();
  p.last_slot = r.u();
  p.planned = r.u();
  p.plan_digest = r.u();
  p.codec_names.resize(r.count(8));
  for (auto& c : p.codec_names) c = r.s();
  p.variants.resize(r.count(16));
  for (auto& v : p.variants) {
    v.layout = r.s();
    v.dtype = r.s();
  }
  p.traces.resize(r.count(8 * 8));
  for (auto& t : p.traces) {
    t.summary = get_summary(r);
    t.plan_skips = get_skips(r);
    t.read_skips = get_slot_skips(r);
    t.stats_skips = get_skips(r);
    t.worker_skips = get_slot_skips(r);
    t.stats.resize(r.count(8 * 8));
    for (auto& x : t.stats) x = get_tensor(r);
  }
  p.tensors.resize(r.count(8 * 8));
  for (auto& x : p.tensors) x = get_tensor(r);
  p.interrupted = r.b();
  auto& s = p.stats;
  s.threads = static_cast<unsigned>(r.u());
  s.wall_s = r.d();
  s.cpu_s = r.d();
  s.codec_s = r.d();
  s.read_s = r.d();
  s.mapped_tensors = r.u();
  s.bytes = r.u();
  if (r.b()) {
    PartError e;
    e.order = r.u();
    e.verify = r.b();
    e.message = r.s();
    p.error = std::move(e);
  }
  r.done();
  return p;
}

}  // namespace cdma::analyze
