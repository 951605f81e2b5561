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

std::uint64_t IterationTracker::anchor_key(const char* op, const void* weight, const std::int64_t* dims,
                                           int nd) noexcept {
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

int IterationTracker::forward_effect(std::uint64_t anchor_key) const noexcept {
  switch (mode_) {
    case IterationMode::kAuto:
      if (!have_anchor_) return 1;
      if (anchor_key == anchor_ && forward_calls_ > 0 && (backward_since_start_ || !ever_backward_)) return 2;
      return 0;
    case IterationMode::kCalls:
      return forward_calls_ >= calls_per_iteration_ ? 2 : 0;
    case IterationMode::kMarker:
      return 0;
  }
  return 0;
}

LayerAssign IterationTracker::assign_forward(const char* op, int effect) const {
  LayerAssign a;
  a.new_iteration = effect != 0;
  a.iteration = iteration_ + (effect == 2 ? 1 : 0);
  a.layer_index = static_cast<std::int32_t>(effect == 2 ? 0 : forward_calls_);
  int k = 0;
  if (effect != 2) {
    auto it = per_op_.find(op);
    if (it != per_op_.end()) k = it->second;
  }
  a.layer = std::string(op) + std::to_string(k);
  return a;
}

LayerAssign IterationTracker::peek_forward(const char* op, std::uint64_t anchor_key) const {
  return assign_forward(op, forward_effect(anchor_key));
}

LayerAssign IterationTracker::on_forward(const char* op, std::uint64_t anchor_key, const std::uint64_t* links,
                                         int nlinks) {
  const int effect = forward_effect(anchor_key);
  const LayerAssign a = assign_forward(op, effect);  // exactly what peek_forward said
  if (effect == 1) {
    have_anchor_ = true;
    anchor_ = anchor_key;
  } else if (effect == 2) {
    ++iteration_;
    start_iteration();
  }
  ++forward_calls_;
  per_op_[op]++;
  for (int i = 0; i < nlinks; ++i) links_.insert_or_assign(links[i], Layer{a.layer_index, a.layer});
  return a;
}

LayerAssign IterationTracker::peek_backward(const char* op, const std::uint64_t* links, int nlinks) const {
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

LayerAssign IterationTracker::on_backward(const char* op, const std::uint64_t* links, int nlinks) {
  backward_since_start_ = true;
  ever_backward_ = true;
  return peek_backward(op, links, nlinks);
}

}  // namespace cdma::capture
