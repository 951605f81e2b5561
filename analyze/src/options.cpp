#include <cdma/analyze/options.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/dtype.hpp>
#include <cdma/formats/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace cdma::analyze {

namespace {
bool contains(const std::optional<std::vector<std::string>>& list, const std::string& v) {
  return !list || std::find(list->begin(), list->end(), v) != list->end();
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::int64_t parse_int(const std::string& text, const std::string& whole) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || text.empty())
    throw formats::Error("iteration list '" + whole + "': '" + text + "' is not an integer (expected e.g. 0-3,7,10-)");
  return v;
}
template <class T>
void dedupe(std::vector<T>& v) {
  std::vector<T> out;
  for (auto& x : v)
    if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  v = std::move(out);
}
}  // namespace

bool Filters::pass(std::int64_t iteration, const std::string& layer, const std::string& op, const std::string& role,
                   bool offloaded) const {
  if (offloaded_only && !offloaded) return false;
  if (iterations) {
    bool in = std::any_of(iterations->begin(), iterations->end(),
                          [&](const IterRange& r) { return iteration >= r.first && iteration <= r.last; });
    if (!in) return false;
  }
  return contains(layers, layer) && contains(ops, op) && contains(roles, role);
}

std::vector<IterRange> parse_iteration_ranges(const std::string& text) {
  std::vector<IterRange> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    // A leading '-' belongs to a negative number (-1 = unknown iteration), so look for the range dash after it.
    auto dash = item.find('-', item.size() > 0 && item[0] == '-' ? 1 : 0);
    IterRange r;
    if (dash == std::string::npos) {
      r.first = r.last = parse_int(item, text);
    } else {
      r.first = parse_int(item.substr(0, dash), text);
      std::string hi = item.substr(dash + 1);
      r.last = hi.empty() ? std::numeric_limits<std::int64_t>::max() : parse_int(hi, text);
      if (r.last < r.first)
        throw formats::Error("iteration list '" + text + "': range '" + item + "' is empty (end before start)");
    }
    out.push_back(r);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

void Options::validate() {
  if (codecs.empty()) {
    std::string dflt;
    for (const auto& c : kDefaultCodecs) dflt += (dflt.empty() ? "" : ",") + c;
    throw formats::Error("no codec chosen (expected e.g. " + dflt + ")");
  }
  for (auto& c : codecs) c = formats::make_codec(c)->name();  // throws CodecError naming the accepted names
  dedupe(codecs);
  if (chunk_bytes != 0 && chunk_bytes < 4)
    throw formats::Error("chunk size " + std::to_string(chunk_bytes) +
                         " bytes is too small (0 = whole tensors, else >= 4)");
  if (layouts.empty()) layouts = {"stored"};
  for (auto& l : layouts) {
    if (l == "stored") continue;
    std::string u = upper(l);
    if (u != "NCHW" && u != "NHWC" && u != "CHWN")
      throw formats::Error("unknown layout '" + l + "' (expected stored, NCHW, NHWC or CHWN)");
    l = u;
  }
  dedupe(layouts);
  if (dtypes.empty()) dtypes = {"stored"};
  for (auto& d : dtypes) {
    if (d == "stored") continue;
    if (d == "float16" || d == "fp16" || d == "f16" || d == "half") {
      d = "float16";
    } else if (d == "bfloat16" || d == "bf16") {
      d = "bfloat16";
    } else if (d == "fp8-e4m3" || d == "float8_e4m3fn" || d == "e4m3") {
      d = "fp8-e4m3";
    } else if (d == "fp8-e5m2" || d == "float8_e5m2" || d == "e5m2") {
      d = "fp8-e5m2";
    } else {
      throw formats::Error("unknown dtype '" + d + "' (expected stored, float16, bfloat16, fp8-e4m3 or fp8-e5m2)");
    }
  }
  dedupe(dtypes);
}

std::optional<ReadMode> parse_read_mode(std::string_view s) noexcept {
  if (s == "mmap") return ReadMode::mmap;
  if (s == "pread") return ReadMode::pread;
  if (s == "hdf5") return ReadMode::hdf5;
  return std::nullopt;
}

}  // namespace cdma::analyze
