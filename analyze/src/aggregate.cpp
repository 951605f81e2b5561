#include <cdma/analyze/aggregate.hpp>

#include <map>
#include <set>
#include <tuple>

namespace cdma::analyze {

std::string_view to_string(Level l) noexcept {
  switch (l) {
    case Level::tensor:
      return "tensor";
    case Level::layer:
      return "layer";
    case Level::iteration:
      return "iteration";
    case Level::layer_iteration:
      return "layer_iteration";
    case Level::network:
      return "network";
  }
  return "?";
}

std::optional<Level> parse_level(std::string_view s) noexcept {
  for (Level l : {Level::tensor, Level::layer, Level::iteration, Level::layer_iteration, Level::network})
    if (s == to_string(l)) return l;
  if (s == "layer-iteration") return Level::layer_iteration;
  return std::nullopt;
}

namespace {
// trace, variant, layer_index, layer, role, op, iteration, capture position
using Key =
    std::tuple<int, std::size_t, std::int32_t, std::string, std::string, std::string, std::int64_t, std::size_t>;

struct Acc {
  GroupRow row;
  std::set<std::int64_t> iterations;
  std::vector<std::uint64_t> cbytes;
  std::vector<bool> unknown, inexact;
  std::vector<double> ratio_sum;
  std::vector<std::uint64_t> ratio_n;
};

Key key_of(const TensorResult& t, std::size_t pos, std::size_t v, Level level) {
  const auto& i = t.info;
  switch (level) {
    case Level::tensor:
      return {i.trace, v, 0, "", "", "", 0, pos};
    case Level::layer:
      return {i.trace, v, i.layer_index, i.layer, i.role, i.op, 0, 0};
    case Level::iteration:
      return {i.trace, v, 0, "", "", "", i.iteration, 0};
    case Level::layer_iteration:
      return {i.trace, v, i.layer_index, i.layer, i.role, i.op, i.iteration, 0};
    case Level::network:
      return {i.trace, v, 0, "", "", "", 0, 0};
  }
  return {};
}
}  // namespace

std::vector<GroupRow> aggregate(const std::vector<TensorResult>& tensors, Level level, std::size_t nvariants,
                                std::size_t ncodecs, std::optional<std::size_t> only_variant) {
  std::map<Key, Acc> groups;
  for (std::size_t pos = 0; pos < tensors.size(); ++pos) {
    const TensorResult& t = tensors[pos];
    for (std::size_t v = 0; v < nvariants && v < t.variants.size(); ++v) {
      const VariantMeasures& vm = t.variants[v];
      if (!vm.present || (only_variant && v != *only_variant)) continue;
      auto [it, fresh] = groups.try_emplace(key_of(t, pos, v, level));
      Acc& a = it->second;
      if (fresh) {
        a.row.trace = t.info.trace;
        a.row.variant = v;
        const bool by_layer = level == Level::layer || level == Level::layer_iteration || level == Level::tensor;
        if (by_layer) {
          a.row.layer = t.info.layer;
          a.row.layer_index = t.info.layer_index;
          a.row.op = t.info.op;
          a.row.role = t.info.role;
          a.row.dims = t.info.dims;
        }
        if (level == Level::iteration || level == Level::layer_iteration || level == Level::tensor)
          a.row.iteration = t.info.iteration;
        if (level == Level::tensor) a.row.tensor = &t;
        a.cbytes.assign(ncodecs, 0);
        a.unknown.assign(ncodecs, false);
        a.inexact.assign(ncodecs, false);
        a.ratio_sum.assign(ncodecs, 0.0);
        a.ratio_n.assign(ncodecs, 0);
      }
      Measures& m = a.row.m;
      ++m.tensors;
      a.iterations.insert(t.info.iteration);
      m.elements += vm.elements;
      m.bytes += vm.bytes;
      m.nonzeros += vm.nonzeros;
      m.zero_runs += vm.zero_runs;
      for (std::size_t c = 0; c < ncodecs && c < vm.codecs.size(); ++c) {
        const CodecSize& cs = vm.codecs[c];
        if (!cs.bytes) {
          a.unknown[c] = true;
          continue;
        }
        if (!cs.exact) a.inexact[c] = true;
        a.cbytes[c] += *cs.bytes;
        if (*cs.bytes > 0) {
          a.ratio_sum[c] += static_cast<double>(vm.bytes) / static_cast<double>(*cs.bytes);
          ++a.ratio_n[c];
        }
      }
    }
  }
  std::vector<GroupRow> out;
  out.reserve(groups.size());
  for (auto& [k, a] : groups) {
    Measures& m = a.row.m;
    m.iterations = a.iterations.size();
    m.codecs.resize(ncodecs);
    for (std::size_t c = 0; c < ncodecs; ++c) {
      CodecTotal& ct = m.codecs[c];
      ct.exact = !a.inexact[c];
      if (a.unknown[c]) continue;
      ct.bytes = a.cbytes[c];
      if (a.cbytes[c] > 0) ct.ratio = static_cast<double>(m.bytes) / static_cast<double>(a.cbytes[c]);
      if (a.ratio_n[c] > 0) ct.mean_ratio = a.ratio_sum[c] / static_cast<double>(a.ratio_n[c]);
    }
    out.push_back(std::move(a.row));
  }
  return out;
}

}  // namespace cdma::analyze
