// Splitting a run into byte-balanced parts and merging the parts into the whole run's Analysis.
#include <cdma/analyze/parts.hpp>
#include <cdma/formats/error.hpp>

#include <algorithm>
#include <numeric>

namespace cdma::analyze {

std::vector<std::size_t> split_by_bytes(const std::vector<std::uint64_t>& bytes, std::size_t parts) {
  if (parts == 0) throw formats::Error("cannot split a run into 0 parts");
  const std::size_t n = bytes.size();
  if (parts > (std::uint64_t{1} << 31)) throw formats::Error("cannot split a run into more than 2^31 parts");
  // Prefix sums (at most 2^62: plan_run checks the total); with no bytes at all (only empty
  // tensors) the count is balanced instead.
  std::vector<std::uint64_t> prefix(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] > (std::uint64_t{1} << 62) - prefix[i]) throw formats::Error("cannot split more than 2^62 bytes");
    prefix[i + 1] = prefix[i] + bytes[i];
  }
  if (prefix[n] == 0)
    for (std::size_t i = 0; i < n; ++i) prefix[i + 1] = i + 1;
  const std::uint64_t total = prefix[n];
  std::vector<std::size_t> cuts(parts + 1, 0);
  cuts[parts] = n;
  std::size_t i = 0;
  for (std::size_t p = 1; p < parts; ++p) {
    // floor(total * p / parts) without overflow (the remainder term is below parts^2 <= 2^62).
    const std::uint64_t target = total / parts * p + total % parts * p / parts;
    while (i < n && prefix[i + 1] <= target) ++i;  // prefix[i] <= target < prefix[i + 1]
    std::size_t cut = i;
    if (i < n && prefix[i + 1] - target < target - prefix[i]) cut = i + 1;  // the nearer boundary
    cuts[p] = std::max(cut, cuts[p - 1]);
  }
  return cuts;
}

namespace {

[[noreturn]] void throw_error(const PartError& e) {
  if (e.local) std::rethrow_exception(e.local);
  if (e.verify) throw VerifyError(e.message);
  throw formats::Error(e.message);
}

void check_fit(const std::vector<Part>& parts) {
  const Part& p0 = parts.front();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    const std::string who = "part " + std::to_string(p.index) + " of " + std::to_string(p.count);
    if (p.count != static_cast<int>(parts.size()) || p.index != static_cast<int>(i))
      throw formats::Error("cannot merge " + std::to_string(parts.size()) + " parts: " + who +
                           " is missing, duplicate or out of range");
    if (p.error) continue;  // its plan may be incomplete; the error is what counts
    if (p.planned != p0.planned || p.plan_digest != p0.plan_digest || p.traces.size() != p0.traces.size())
      throw formats::Error(who + " planned " + std::to_string(p.planned) + " tensors in " +
                           std::to_string(p.traces.size()) + " traces, part 0 planned " + std::to_string(p0.planned) +
                           " in " + std::to_string(p0.traces.size()) +
                           " (or the same number differently, or other files: the path, size, modification time"
                           " or tensor metadata of a trace differ): the processes do not see the same trace files");
    const std::uint64_t expect_first = i == 0 ? 0 : parts[i - 1].last_slot;
    if (p.first_slot != expect_first || p.last_slot < p.first_slot || p.last_slot > p.planned ||
        (i + 1 == parts.size() && p.last_slot != p.planned))
      throw formats::Error(who + " covers tensors [" + std::to_string(p.first_slot) + ", " +
                           std::to_string(p.last_slot) + "), which does not continue the other parts");
    if (p.codec_names != p0.codec_names || p.variants.size() != p0.variants.size())
      throw formats::Error(who + " ran with other codecs or variants than part 0");
  }
}

void add_stats(RunStats& a, const RunStats& b) {
  a.threads += b.threads;
  a.wall_s = std::max(a.wall_s, b.wall_s);
  a.cpu_s += b.cpu_s;
  a.codec_s += b.codec_s;
  a.read_s += b.read_s;
  a.mapped_tensors += b.mapped_tensors;
  a.bytes += b.bytes;
}

}  // namespace

Analysis merge_parts(std::vector<Part> parts, Options opts) {
  if (parts.empty()) throw formats::Error("cannot merge 0 parts");
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.index < b.index; });
  check_fit(parts);
  // The error that the whole run would have met first (ties: the lower part).
  const PartError* first = nullptr;
  for (const auto& p : parts)
    if (p.error && (!first || p.error->order < first->order)) first = &*p.error;
  if (first) throw_error(*first);

  opts.validate();
  Analysis a;
  a.options = std::move(opts);
  a.variants = parts[0].variants;
  a.codec_names = parts[0].codec_names;
  const std::size_t ntraces = parts[0].traces.size();
  std::vector<std::size_t> cursor(parts.size(), 0);
  for (std::size_t t = 0; t < ntraces; ++t) {
    std::int64_t tensors = 0;
    for (const auto& p : parts) tensors += p.traces[t].summary.tensors;
    PartTrace& p0 = parts[0].traces[t];
    TraceSummary ts = std::move(p0.summary);
    ts.tensors = tensors;
    // The whole run's order: planning's skips, the reader's (by slot), the /stats rows', the
    // workers' (by slot). Parts hold consecutive ranges, so part order is slot order.
    ts.skipped = std::move(p0.plan_skips);
    for (auto& p : parts)
      for (auto& k : p.traces[t].read_skips) ts.skipped.push_back(std::move(k.skip));
    for (auto& k : p0.stats_skips) ts.skipped.push_back(std::move(k));
    for (auto& p : parts)
      for (auto& k : p.traces[t].worker_skips) ts.skipped.push_back(std::move(k.skip));
    a.traces.push_back(std::move(ts));

    for (std::size_t i = 0; i < parts.size(); ++i) {
      auto& ts_i = parts[i].tensors;
      while (cursor[i] < ts_i.size() && ts_i[cursor[i]].info.trace == static_cast<int>(t))
        a.tensors.push_back(std::move(ts_i[cursor[i]++]));
    }
    for (auto& r : p0.stats) a.tensors.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (cursor[i] != parts[i].tensors.size())
      throw formats::Error("part " + std::to_string(i) + " holds tensors of a trace out of order or out of range");
  for (const auto& p : parts) {
    a.interrupted = a.interrupted || p.interrupted;
    add_stats(a.stats, p.stats);
  }
  return a;
}

}  // namespace cdma::analyze
