#include "iteration.hpp"

namespace cdma::capture {

namespace {
std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}
std::uint64_t hash_str(const char* s) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (; s && *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}
}  // namespace

std::uint64_t IterationTracker::link_key(const char* op, const void* ptr) noexcept {
  return mix(hash_str(op), reinterpret_cast<std::uintptr_t>(ptr));
}

std::uint64_t IterationTracker::anchor_key(const char* op, const void* weight,
                                           const std::int64_t* dims, int nd) noexcept {
  std::uint64_t h = mix(hash_str(op), reinterpret_cast<std::uintptr_t>(weight));
  for (int i = 0; i < nd; ++i) h = mix(h, static_cast<std::uint64_t>(dims[i]));
  return h;
}

void IterationTracker::start_iteration() {
  backward_since_start_ = false;
  forward_calls_ = 0;
  per_op_.clear();
  links_.clear();
}

void IterationTracker::mark() {
  if (mode_ != IterationMode::kMarker) return;
  if (marked_once_ || forward_calls_ > 0 || backward_since_start_) ++iteration_;
  marked_once_ = true;
  start_iteration();
}

LayerAssign IterationTracker::on_forward(const char* op, std::uint64_t anchor_key,
                                         const std::uint64_t* links, int nlinks) {
  LayerAssign a;
  switch (mode_) {
    case IterationMode::kAuto:
      if (!have_anchor_) {
        have_anchor_ = true;
        anchor_ = anchor_key;
        a.new_iteration = true;
      } else if (anchor_key == anchor_ && forward_calls_ > 0 &&
                 (backward_since_start_ || !ever_backward_)) {
        ++iteration_;
        start_iteration();
        a.new_iteration = true;
      }
      break;
    case IterationMode::kCalls:
      if (forward_calls_ >= calls_per_iteration_) {
        ++iteration_;
        start_iteration();
        a.new_iteration = true;
      }
      break;
    case IterationMode::kMarker:
      break;
  }
  a.iteration = iteration_;
  a.layer_index = static_cast<std::int32_t>(forward_calls_++);
  int k = per_op_[op]++;
  a.layer = std::string(op) + std::to_string(k);
  for (int i = 0; i < nlinks; ++i) links_.insert_or_assign(links[i], Layer{a.layer_index, a.layer});
  return a;
}

LayerAssign IterationTracker::on_backward(const char* op, const std::uint64_t* links, int nlinks) {
  backward_since_start_ = true;
  ever_backward_ = true;
  LayerAssign a;
  a.iteration = iteration_;
  for (int i = 0; i < nlinks; ++i) {
    auto it = links_.find(links[i]);
    if (it != links_.end()) {
      a.layer_index = it->second.index;
      a.layer = it->second.name;
      return a;
    }
  }
  a.layer_index = -1;
  a.layer = std::string(op) + "_bwd";
  return a;
}

}  // namespace cdma::capture
