#include <cdma/analyze/speed.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/simd.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/formats/trace.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

namespace cdma::analyze {

namespace {

using Clock = std::chrono::steady_clock;

// The best of `rounds` rounds of f(), each repeating it until min_s has passed; seconds per call.
template <class F>
double best_time(int rounds, double min_s, F&& f) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    std::uint64_t n = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      f();
      ++n;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < min_s);
    best = std::min(best, el / static_cast<double>(n));
  }
  return best;
}

void add(SpeedRow& into, const SpeedRow& x) {
  into.tensors += x.tensors;
  into.bytes += x.bytes;
  into.memcpy_s += x.memcpy_s;
  for (std::size_t c = 0; c < x.compressed.size(); ++c) {
    into.compressed[c] += x.compressed[c];
    into.encode_s[c] += x.encode_s[c];
    into.decode_s[c] += x.decode_s[c];
  }
}

}  // namespace

SpeedReport measure_codec_speed(const std::vector<std::filesystem::path>& paths, const SpeedOptions& opts,
                                const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  if (opts.rounds < 1 || opts.min_ms < 0) throw formats::UsageError("bench: rounds must be >= 1 and min_ms >= 0");
  SpeedReport rep;
  std::vector<std::unique_ptr<formats::Codec>> codecs;
  for (const auto& spec : opts.codecs) {
    codecs.push_back(formats::make_codec(spec));
    rep.codecs.push_back(codecs.back()->name());
  }
  rep.cpu = formats::cpu_model_name();
  rep.simd = std::string(formats::to_string(formats::active_simd_level()));
  const std::size_t nc = codecs.size();
  const double min_s = opts.min_ms / 1000;
  std::vector<formats::TraceReader> readers;
  std::uint64_t total = 0, done = 0;
  for (const auto& p : paths) {
    readers.emplace_back(p);
    rep.paths.push_back(formats::clean_text(p.string()));
    for (const auto& t : readers.back().tensors())
      if (opts.filters.pass(t.iteration, t.layer, t.op, t.role, t.offloaded())) ++total;
  }
  std::vector<std::byte> data, copy, enc, dec;
  for (std::size_t ti = 0; ti < readers.size(); ++ti) {
    const auto& r = readers[ti];
    std::map<std::pair<std::int32_t, std::string>, SpeedRow> by_layer;
    SpeedRow tot;
    tot.trace = static_cast<int>(ti);
    tot.compressed.assign(nc, 0);
    tot.encode_s.assign(nc, 0);
    tot.decode_s.assign(nc, 0);
    for (const auto& t : r.tensors()) {
      if (!opts.filters.pass(t.iteration, t.layer, t.op, t.role, t.offloaded())) continue;
      data = r.read(t);
      const std::size_t width = formats::dtype_size(t.dtype);
      SpeedRow x;
      x.tensors = 1;
      x.bytes = data.size();
      copy.resize(data.size());
      dec.resize(data.size());
      x.memcpy_s = best_time(opts.rounds, min_s, [&] {
        if (!data.empty()) std::memcpy(copy.data(), data.data(), data.size());
        asm volatile("" : : "r"(copy.data()) : "memory");  // the copy counts: keep it
      });
      for (std::size_t c = 0; c < nc; ++c) {
        enc.resize(codecs[c]->max_encoded_size(data.size(), width));
        std::size_t n = 0;
        x.encode_s.push_back(best_time(opts.rounds, min_s, [&] { n = codecs[c]->encode(data, width, enc); }));
        x.compressed.push_back(n);
        const std::span<const std::byte> stream(enc.data(), n);
        x.decode_s.push_back(best_time(opts.rounds, min_s, [&] { codecs[c]->decode(stream, width, dec); }));
        if (opts.verify && dec != data)
          throw formats::CodecError(fmt::format("{}: /tensors/{}: {} did not decode to the original bytes",
                                                r.path().string(), t.name, rep.codecs[c]));
      }
      auto [it, fresh] = by_layer.try_emplace({t.layer_index, t.layer});
      SpeedRow& row = it->second;
      if (fresh) {
        row.trace = static_cast<int>(ti);
        row.layer = t.layer;
        row.layer_index = t.layer_index;
        row.op = t.op;
        row.compressed.assign(nc, 0);
        row.encode_s.assign(nc, 0);
        row.decode_s.assign(nc, 0);
      }
      add(row, x);
      add(tot, x);
      if (progress) progress(++done, total);
    }
    for (auto& [key, row] : by_layer) rep.layers.push_back(std::move(row));
    rep.totals.push_back(std::move(tot));
  }
  return rep;
}

formats::Table speed_table(const SpeedReport& r) {
  using K = formats::Table::Kind;
  using Cell = formats::Table::Cell;
  formats::Table t({{"trace", K::integer},
                    {"path", K::text},
                    {"layer_index", K::integer},
                    {"layer", K::text},
                    {"op", K::text},
                    {"tensors", K::integer},
                    {"bytes", K::integer},
                    {"codec", K::text},
                    {"compressed_bytes", K::integer},
                    {"ratio", K::real},
                    {"memcpy_gbps", K::real},
                    {"encode_gbps", K::real},
                    {"decode_gbps", K::real},
                    {"encode_vs_memcpy", K::real},
                    {"decode_vs_memcpy", K::real},
                    {"cpu", K::text},
                    {"simd", K::text}});
  auto gbps = [](std::uint64_t bytes, double s) { return s > 0 ? Cell(static_cast<double>(bytes) / s / 1e9) : Cell(); };
  auto rel = [](double base_s, double s) { return s > 0 ? Cell(base_s / s) : Cell(); };
  auto emit = [&](const SpeedRow& row, bool total) {
    for (std::size_t c = 0; c < r.codecs.size(); ++c)
      t.add_row(
          {Cell(static_cast<std::int64_t>(row.trace)), Cell(r.paths.at(static_cast<std::size_t>(row.trace))),
           total ? Cell() : Cell(static_cast<std::int64_t>(row.layer_index)), total ? Cell() : Cell(row.layer),
           total ? Cell() : Cell(row.op), Cell(static_cast<std::int64_t>(row.tensors)),
           Cell(static_cast<std::int64_t>(row.bytes)), Cell(r.codecs[c]),
           Cell(static_cast<std::int64_t>(row.compressed[c])),
           row.compressed[c] ? Cell(static_cast<double>(row.bytes) / static_cast<double>(row.compressed[c])) : Cell(),
           gbps(row.bytes, row.memcpy_s), gbps(row.bytes, row.encode_s[c]), gbps(row.bytes, row.decode_s[c]),
           rel(row.memcpy_s, row.encode_s[c]), rel(row.memcpy_s, row.decode_s[c]), Cell(r.cpu), Cell(r.simd)});
  };
  for (std::size_t ti = 0; ti < r.totals.size(); ++ti) {
    for (const auto& row : r.layers)
      if (row.trace == static_cast<int>(ti)) emit(row, false);
    emit(r.totals[ti], true);
  }
  return t;
}

}  // namespace cdma::analyze
