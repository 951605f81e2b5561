// The network zoo: networks read from data files (data/zoo; zoo.hpp), their shapes, FLOPs and
// DRAM bytes computed here by a builder that tracks per-sample shapes; and the roofline.
#include <cdma/hwmodel/zoo.hpp>

#include "data_file.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cdma/formats/text.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>

namespace cdma::hwmodel {

namespace {

double D(std::int64_t v) { return static_cast<double>(v); }

struct Shape {
  std::int64_t c = 0, h = 1, w = 1;
  std::int64_t elems() const { return c * h * w; }
};

struct T {
  int id = -1;
  Shape s;
  bool sparse = false;  // can hold ReLU zeros
};

// Emits layers in forward order, tracking per-sample shapes; sizes are per batch.
class Builder {
 public:
  Builder(std::string name, int batch, int eb) : batch_(batch), eb_(eb) {
    net_.name = std::move(name);
    net_.source = "zoo";
    net_.batch = batch;
  }

  T input(Shape s) {
    check_size(s);
    T t{next_++, s, false};
    net_.input_tensor = t.id;
    return t;
  }

  T conv(const std::string& name, const T& x, std::int64_t cout, int k, int stride = 1, int pad = 0, bool relu = true,
         int groups = 1) {
    Shape o{cout, out_dim(x.s.h, k, stride, pad, false), out_dim(x.s.w, k, stride, pad, false)};
    const double cin = D(x.s.c / groups), kk = D(k) * D(k);
    double weights = D(cout) * cin * kk + D(cout);
    double flops = 2.0 * batch_ * D(o.elems()) * cin * kk;
    return emit(name, "conv", x, o, flops, weights, relu);
  }
  T fc(const std::string& name, const T& x, std::int64_t out, bool relu = true) {
    Shape o{out, 1, 1};
    double weights = D(x.s.elems()) * D(out) + D(out);
    return emit(name, "linear", x, o, 2.0 * batch_ * D(x.s.elems()) * D(out), weights, relu);
  }
  // Max or average pooling; ceil_mode as Caffe rounds output sizes.
  T pool(const std::string& name, const T& x, int k, int stride, int pad = 0, bool ceil_mode = false) {
    Shape o{x.s.c, out_dim(x.s.h, k, stride, pad, ceil_mode), out_dim(x.s.w, k, stride, pad, ceil_mode)};
    T y = emit(name, "pool", x, o, 1.0 * batch_ * D(o.elems()) * k * k, 0, false);
    return keep_sparsity(y, x);
  }
  T lrn(const std::string& name, const T& x) {
    T y = emit(name, "lrn", x, x.s, 10.0 * batch_ * D(x.s.elems()), 0, false);
    return keep_sparsity(y, x);
  }
  T dropout(const std::string& name, const T& x) {
    T y = emit(name, "dropout", x, x.s, 2.0 * batch_ * D(x.s.elems()), 0, false);
    y.sparse = true;  // dropout zeroes elements
    return y;
  }
  T bn(const std::string& name, const T& x, bool relu) {
    return emit(name, "bn", x, x.s, 5.0 * batch_ * D(x.s.elems()), 4.0 * D(x.s.c), relu);
  }
  T softmax(const std::string& name, const T& x) {
    return emit(name, "softmax", x, x.s, 5.0 * batch_ * D(x.s.elems()), 0, false);
  }
  // Residual add (+ReLU): its backward needs no activation.
  T add(const std::string& name, const T& a, const T& b, bool relu) {
    T y = emit(name, "add", a, a.s, 1.0 * batch_ * D(a.s.elems()), 0, relu, /*needs_x=*/false);
    net_.layers.back().dram_bytes += bytes(b.s);
    return y;
  }
  // Channel concatenation (a copy); its backward needs no activation.
  T concat(const std::string& name, const std::vector<T>& xs) {
    Shape o = xs.front().s;
    o.c = 0;
    bool sparse = true;
    for (const auto& x : xs) {
      o.c += x.s.c;
      sparse = sparse && x.sparse;
    }
    T y = emit(name, "concat", xs.front(), o, 0, 0, false, /*needs_x=*/false);
    net_.layers.back().dram_bytes = 2 * bytes(o);
    y.sparse = sparse;
    return y;
  }

  Network take() { return std::move(net_); }

 private:
  static std::int64_t out_dim(std::int64_t in, int k, int stride, int pad, bool ceil_mode) {
    std::int64_t span = in + 2 * pad - k;
    if (span < 0) throw ModelError(fmt::format("kernel {} larger than its input ({} + 2 x pad {})", k, in, pad));
    std::int64_t o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && pad > 0 && (o - 1) * stride >= in + pad) --o;  // last window must start inside
    return o;
  }
  double bytes(const Shape& s) const { return D(s.elems()) * batch_ * eb_; }
  // Byte counts are int64 (Layer::x_bytes): a tensor of more than 2^62 bytes is refused.
  void check_size(const Shape& s) const {
    if (D(s.c) * D(s.h) * D(s.w) * batch_ * eb_ > 0x1p62)
      throw ModelError(fmt::format("output {}x{}x{} at batch {} is more than 2^62 bytes", s.c, s.h, s.w, batch_));
  }

  T emit(const std::string& name, const char* op, const T& x, Shape o, double flops, double weights, bool relu,
         bool needs_x = true) {
    check_size(o);
    Layer l;
    l.name = name;
    l.op = op;
    if (needs_x) {
      l.x_tensor = x.id;
      l.x_bytes = x.s.elems() * batch_ * eb_;
      l.x_sparse = x.sparse;
    }
    l.flops = flops;
    l.dram_bytes = bytes(x.s) + bytes(o) + weights * eb_;
    l.out_shape = {o.c, o.h, o.w};
    net_.layers.push_back(std::move(l));
    return T{next_++, o, relu};
  }
  static T keep_sparsity(T y, const T& x) {
    y.sparse = x.sparse;
    return y;
  }

  Network net_;
  int batch_, eb_;
  int next_ = 0;
};

using nlohmann::json;

using detail::shown;

json read_json(const std::filesystem::path& p) { return detail::read_json_file(p, "zoo"); }

// Checked access to one zoo file: every message names the file and the field.
class Fields {
 public:
  explicit Fields(std::filesystem::path file) : file_(std::move(file)) {}
  [[noreturn]] void fail(const std::string& what) const { throw ModelError(prefix() + what); }
  std::string prefix() const { return shown(file_) + ": "; }

  void check_schema(const json& root, const char* name) const { detail::check_schema(file_, root, name); }
  // Only `known` keys in object `j` (named `who`): a misspelt key is an error, not a default.
  void only(const json& j, const std::string& who, const std::vector<std::string>& known) const {
    for (const auto& [k, v] : j.items())
      if (std::find(known.begin(), known.end(), k) == known.end())
        fail(fmt::format("{}: unknown key '{}' (expected: {})", who, formats::clean_text(k), fmt::join(known, ", ")));
  }
  std::string string(const json& j, const char* key, const std::string& who) const {
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
      fail(fmt::format("{} needs a non-empty string '{}'", who, key));
    return j[key].get<std::string>();
  }
  std::int64_t integer_value(const json& v, const std::string& field, std::int64_t lo, std::int64_t hi) const {
    // lo >= 0 and hi < 2^63 here, so an unsigned value is compared as one.
    bool ok = false;
    if (v.is_number_unsigned()) {
      const auto x = v.get<std::uint64_t>();
      ok = x >= static_cast<std::uint64_t>(lo) && x <= static_cast<std::uint64_t>(hi);
    } else if (v.is_number_integer()) {
      const auto x = v.get<std::int64_t>();
      ok = x >= lo && x <= hi;
    }
    if (!ok) fail(fmt::format("{} = {} must be an integer in {}..{}", field, v.dump(), lo, hi));
    return v.get<std::int64_t>();
  }
  // An integer key in [lo, hi], or `dflt` when absent (required when there is none).
  std::int64_t integer(const json& j, const char* key, const std::string& who, std::int64_t lo, std::int64_t hi,
                       std::optional<std::int64_t> dflt = std::nullopt) const {
    if (!j.contains(key)) {
      if (dflt) return *dflt;
      fail(fmt::format("{} needs an integer '{}'", who, key));
    }
    return integer_value(j[key], who + "." + key, lo, hi);
  }
  bool boolean(const json& j, const char* key, const std::string& who, std::optional<bool> dflt) const {
    if (!j.contains(key)) {
      if (dflt) return *dflt;
      fail(fmt::format("{} needs a boolean '{}'", who, key));
    }
    if (!j[key].is_boolean()) fail(fmt::format("{}.{} must be true or false, not {}", who, key, j[key].type_name()));
    return j[key].get<bool>();
  }
  const json& array(const json& j, const char* key, const std::string& who) const {
    if (!j.contains(key) || !j[key].is_array() || j[key].empty())
      fail(fmt::format("{} needs a non-empty array '{}'", who, key));
    return j[key];
  }

 private:
  std::filesystem::path file_;
};

// Limits far above any real network, low enough that shapes and byte counts stay exact.
constexpr std::int64_t kMaxChannels = std::int64_t{1} << 20;
constexpr std::int64_t kMaxSide = std::int64_t{1} << 20;
constexpr std::int64_t kMaxKernel = std::int64_t{1} << 16;
constexpr std::size_t kMaxLayers = 100000;

const std::vector<std::string> kOps{"conv", "linear", "pool", "lrn", "dropout", "bn", "add", "concat", "softmax"};

// One layer of a network file: its inputs resolved among the tensors seen so far.
class LayerReader {
 public:
  LayerReader(const Fields& f, Builder& b, T input) : f_(f), b_(b), prev_(input) { tensors_["input"] = input; }

  void read(const json& l, std::size_t i) {
    if (!l.is_object()) f_.fail(fmt::format("layers[{}] must be an object", i));
    const std::string name = f_.string(l, "name", fmt::format("layers[{}]", i));
    const std::string who = fmt::format("layers[{}] '{}'", i, formats::clean_text(name));
    if (tensors_.count(name)) f_.fail(fmt::format("{}: the name is taken (by 'input' or an earlier layer)", who));
    const std::string op = f_.string(l, "op", who);
    if (std::find(kOps.begin(), kOps.end(), op) == kOps.end())
      f_.fail(fmt::format("{}: unknown op '{}' (expected: {})", who, formats::clean_text(op), fmt::join(kOps, ", ")));
    try {
      prev_ = tensors_[name] = build(l, who, name, op);
    } catch (const ModelError& e) {
      if (std::string_view(e.what()).starts_with(f_.prefix())) throw;  // already names the file and field
      f_.fail(fmt::format("{}: {}", who, e.what()));
    }
  }

 private:
  T in(const json& l, const std::string& who) const {
    if (!l.contains("input")) return prev_;
    if (!l["input"].is_string()) f_.fail(fmt::format("{}.input must be a layer name", who));
    return tensor(l["input"].get<std::string>(), who + ".input");
  }
  T tensor(const std::string& n, const std::string& field) const {
    auto it = tensors_.find(n);
    if (it == tensors_.end()) f_.fail(fmt::format("{}: no earlier layer '{}'", field, formats::clean_text(n)));
    return it->second;
  }
  std::vector<T> ins(const json& l, const std::string& who, std::size_t min, std::size_t max) const {
    const json& a = f_.array(l, "inputs", who);
    if (a.size() < min || a.size() > max) f_.fail(fmt::format("{}.inputs must name {} to {} layers", who, min, max));
    std::vector<T> out;
    for (const auto& n : a) {
      if (!n.is_string()) f_.fail(fmt::format("{}.inputs must be layer names", who));
      out.push_back(tensor(n.get<std::string>(), who + ".inputs"));
    }
    return out;
  }
  int small(const json& l, const char* key, const std::string& who, std::int64_t lo, std::int64_t hi,
            std::optional<std::int64_t> dflt = std::nullopt) const {
    return static_cast<int>(f_.integer(l, key, who, lo, hi, dflt));
  }

  T build(const json& l, const std::string& who, const std::string& name, const std::string& op) {
    if (op == "conv") {
      f_.only(l, who, {"name", "op", "input", "out", "kernel", "stride", "pad", "groups", "relu"});
      const T x = in(l, who);
      const std::int64_t out = f_.integer(l, "out", who, 1, kMaxChannels);
      const int groups = small(l, "groups", who, 1, kMaxChannels, 1);
      if (x.s.c % groups != 0 || out % groups != 0)
        f_.fail(fmt::format("{}: groups = {} must divide the input's {} and the output's {} channels", who, groups,
                            x.s.c, out));
      return b_.conv(name, x, out, small(l, "kernel", who, 1, kMaxKernel), small(l, "stride", who, 1, kMaxKernel, 1),
                     small(l, "pad", who, 0, kMaxKernel, 0), f_.boolean(l, "relu", who, true), groups);
    }
    if (op == "linear") {
      f_.only(l, who, {"name", "op", "input", "out", "relu"});
      const T x = in(l, who);
      return b_.fc(name, x, f_.integer(l, "out", who, 1, kMaxChannels), f_.boolean(l, "relu", who, true));
    }
    if (op == "pool") {
      f_.only(l, who, {"name", "op", "input", "kernel", "stride", "pad", "ceil_mode"});
      const T x = in(l, who);
      // "global": one window over the whole (square) input, as global average pooling.
      const bool global = l.contains("kernel") && l["kernel"] == "global";
      const int k = global ? static_cast<int>(x.s.h) : small(l, "kernel", who, 1, kMaxKernel);
      return b_.pool(name, x, k, small(l, "stride", who, 1, kMaxKernel), small(l, "pad", who, 0, kMaxKernel, 0),
                     f_.boolean(l, "ceil_mode", who, false));
    }
    if (op == "bn") {
      f_.only(l, who, {"name", "op", "input", "relu"});
      const T x = in(l, who);
      return b_.bn(name, x, f_.boolean(l, "relu", who, std::nullopt));
    }
    if (op == "add") {
      f_.only(l, who, {"name", "op", "inputs", "relu"});
      const auto xs = ins(l, who, 2, 2);
      if (xs[0].s.c != xs[1].s.c || xs[0].s.h != xs[1].s.h || xs[0].s.w != xs[1].s.w)
        f_.fail(fmt::format("{}: inputs of different shapes", who));
      return b_.add(name, xs[0], xs[1], f_.boolean(l, "relu", who, std::nullopt));
    }
    if (op == "concat") {
      f_.only(l, who, {"name", "op", "inputs"});
      const auto xs = ins(l, who, 1, 1024);
      for (const auto& x : xs)
        if (x.s.h != xs[0].s.h || x.s.w != xs[0].s.w) f_.fail(fmt::format("{}: inputs of different sizes", who));
      return b_.concat(name, xs);
    }
    f_.only(l, who, {"name", "op", "input"});
    const T x = in(l, who);
    if (op == "lrn") return b_.lrn(name, x);
    if (op == "dropout") return b_.dropout(name, x);
    return b_.softmax(name, x);
  }

  const Fields& f_;
  Builder& b_;
  T prev_;
  std::map<std::string, T> tensors_;
};

struct ZooEntry {
  std::string name;
  std::vector<std::string> aliases;
  bool paper = false;
};

// zoo.json: the networks in order. Names are file stems, so limited to [A-Za-z0-9._-].
std::vector<ZooEntry> read_index(const std::filesystem::path& dir) {
  const auto file = dir / "zoo.json";
  const Fields f(file);
  const json root = read_json(file);
  f.check_schema(root, "cdma-zoo-index");
  f.only(root, "zoo", {"schema", "schema_version", "networks"});
  std::vector<ZooEntry> out;
  std::vector<std::string> seen;
  auto check_name = [&](const std::string& n, const std::string& who) {
    const bool ok = !n.empty() && n[0] != '.' && std::all_of(n.begin(), n.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
    if (!ok) f.fail(fmt::format("{}: '{}' is not a plain name ([A-Za-z0-9._-])", who, formats::clean_text(n)));
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) f.fail(fmt::format("{}: '{}' appears twice", who, n));
    seen.push_back(n);
  };
  const json& nets = f.array(root, "networks", "zoo");
  for (std::size_t i = 0; i < nets.size(); ++i) {
    const json& e = nets[i];
    const std::string who = fmt::format("networks[{}]", i);
    if (!e.is_object()) f.fail(who + " must be an object");
    f.only(e, who, {"name", "aliases", "paper"});
    ZooEntry z;
    z.name = f.string(e, "name", who);
    check_name(z.name, who + ".name");
    if (e.contains("aliases")) {
      if (!e["aliases"].is_array()) f.fail(who + ".aliases must be an array of names");
      for (const auto& a : e["aliases"]) {
        if (!a.is_string()) f.fail(who + ".aliases must be an array of names");
        check_name(a.get<std::string>(), who + ".aliases");
        z.aliases.push_back(a.get<std::string>());
      }
    }
    z.paper = f.boolean(e, "paper", who, false);
    out.push_back(std::move(z));
  }
  return out;
}

}  // namespace

std::filesystem::path default_zoo_dir() {
  if (const char* env = std::getenv("CDMA_ZOO"); env && *env) return env;
  if (auto dir = installed_data_dir("zoo", "zoo.json"); !dir.empty()) return dir;
#ifdef CDMA_HWMODEL_ZOO_DIR
  return CDMA_HWMODEL_ZOO_DIR;
#else
  throw ModelError(
      "the network zoo was not found: no data/zoo/zoo.json beside the cdma module or executable "
      "(a broken install: reinstall cdma), and CDMA_ZOO is not set");
#endif
}

std::vector<std::string> zoo_names() {
  std::vector<std::string> out;
  for (const auto& e : read_index(default_zoo_dir())) out.push_back(e.name);
  return out;
}

std::optional<std::string> zoo_canonical(const std::string& name) {
  for (const auto& e : read_index(default_zoo_dir()))
    if (e.name == name || std::find(e.aliases.begin(), e.aliases.end(), name) != e.aliases.end()) return e.name;
  return std::nullopt;
}

std::vector<std::string> paper_networks() {
  std::vector<std::string> out;
  for (const auto& e : read_index(default_zoo_dir()))
    if (e.paper) out.push_back(e.name);
  return out;
}

Network load_zoo_network(const std::filesystem::path& file, int batch, int element_bytes) {
  if (batch < 1) throw ModelError(fmt::format("batch size must be >= 1, got {}", batch));
  if (element_bytes != 4 && element_bytes != 2)
    throw ModelError(fmt::format("element size must be 4 or 2 bytes, got {}", element_bytes));
  const Fields f(file);
  const json root = read_json(file);
  f.check_schema(root, "cdma-zoo-network");
  f.only(root, "network", {"schema", "schema_version", "name", "source", "reference", "input", "layers"});
  Builder b(f.string(root, "name", "network"), batch, element_bytes);
  f.string(root, "source", "network");     // "paper", "torchvision", ...: where the layer list comes from
  f.string(root, "reference", "network");  // the citation
  const json& shape = f.array(root, "input", "network");
  if (shape.size() != 3) f.fail("input must be [channels, height, width]");
  Shape s{f.integer_value(shape[0], "input[0]", 1, kMaxChannels), f.integer_value(shape[1], "input[1]", 1, kMaxSide),
          f.integer_value(shape[2], "input[2]", 1, kMaxSide)};
  T x;
  try {
    x = b.input(s);
  } catch (const ModelError& e) {
    f.fail(fmt::format("input: {}", e.what()));
  }
  const json& layers = f.array(root, "layers", "network");
  if (layers.size() > kMaxLayers) f.fail(fmt::format("more than {} layers", kMaxLayers));
  LayerReader r(f, b, x);
  for (std::size_t i = 0; i < layers.size(); ++i) r.read(layers[i], i);
  return b.take();
}

Network zoo_network(const std::string& name, int batch, int element_bytes, const std::filesystem::path& dir) {
  if (batch < 1) throw ModelError(fmt::format("batch size must be >= 1, got {}", batch));
  if (element_bytes != 4 && element_bytes != 2)
    throw ModelError(fmt::format("element size must be 4 or 2 bytes, got {}", element_bytes));
  const auto index = read_index(dir);
  for (const auto& e : index) {
    if (e.name != name && std::find(e.aliases.begin(), e.aliases.end(), name) == e.aliases.end()) continue;
    const auto file = dir / (e.name + ".json");
    Network net = load_zoo_network(file, batch, element_bytes);
    if (net.name != e.name)
      throw ModelError(fmt::format("{}: name is '{}', expected '{}' (zoo.json)", shown(file),
                                   formats::clean_text(net.name), e.name));
    return net;
  }
  std::vector<std::string> names;
  for (const auto& e : index) names.push_back(e.name);
  throw ModelError(fmt::format("unknown network '{}' (zoo: {})", name, fmt::join(names, ", ")));
}

Network zoo_network(const std::string& name, int batch, int element_bytes) {
  return zoo_network(name, batch, element_bytes, default_zoo_dir());
}

void apply_roofline(Network& net, const GpuPreset& gpu, const std::string& precision, double bwd_factor) {
  if (!(bwd_factor >= 0)) throw ModelError(fmt::format("backward factor must be >= 0, got {}", bwd_factor));
  const double flops_per_s = gpu.peak_flops(precision) * gpu.compute_efficiency;
  const double bytes_per_s = gpu.dram_gbps * 1e9 * gpu.dram_efficiency;
  for (auto& l : net.layers) {
    Ps f = std::max(transfer_ps(l.flops, flops_per_s), transfer_ps(l.dram_bytes, bytes_per_s));
    l.fwd_ps = f;
    l.bwd_ps = static_cast<Ps>(std::llround(static_cast<double>(f) * bwd_factor));
  }
}

}  // namespace cdma::hwmodel
