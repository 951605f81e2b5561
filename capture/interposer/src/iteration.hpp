// Iteration detection and layer naming for intercepted calls (pure logic, unit-tested).
//
// Heuristic (IterationMode::kAuto): the first forward call of the run is the anchor, identified
// by its op, its weight pointer (0 for ops without weights) and its input dims. A later forward
// call with the same key starts a new iteration if a backward call was seen since the current
// iteration began (training), or if no backward call was ever seen (inference loops). Weights are
// updated in place by every framework we know, so the first layer's weight pointer is stable.
//
// Layers: forward calls are numbered in order within an iteration (layer_index) and named
// "<op><k>" with k counting that op's calls in the iteration ("conv0", "bn0", "conv1").
// Backward calls find their forward layer through link keys (the pointers both calls share:
// conv X and W, BN X, activation X/Y, ...); unmatched backward calls get layer_index -1.
//
// Only calls that succeeded count. The interposer asks peek_*() before the real call (for the
// names of the tensors it copies) and reports the call with on_*() afterwards, only when the call
// returned success: a failed call (PyTorch tries cuDNN plans until one runs, so a convolution may
// fail before the same convolution succeeds) neither becomes the anchor, nor starts an iteration,
// nor numbers a layer, nor counts as the backward call that lets the next anchor call start an
// iteration.
#pragma once

#include <cdma/capture/config.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>

namespace cdma::capture {

struct LayerAssign {
  std::int64_t iteration = -1;
  std::int32_t layer_index = -1;
  std::string layer;
  bool new_iteration = false;  // this call started an iteration
};

class IterationTracker {
 public:
  IterationTracker(IterationMode mode, std::int64_t calls_per_iteration)
      : mode_(mode), calls_per_iteration_(calls_per_iteration) {}

  // A forward call that succeeded. `anchor_key` identifies the call across iterations; `links`
  // are keys a backward call may later present (use link_key()).
  LayerAssign on_forward(const char* op, std::uint64_t anchor_key, const std::uint64_t* links, int nlinks);
  // What on_forward would return now, without changing anything (before the call's status is known).
  LayerAssign peek_forward(const char* op, std::uint64_t anchor_key) const;
  // A backward call that succeeded; `links` as above, first match wins.
  LayerAssign on_backward(const char* op, const std::uint64_t* links, int nlinks);
  // What on_backward would return now, without changing anything.
  LayerAssign peek_backward(const char* op, const std::uint64_t* links, int nlinks) const;
  // cdma_capture_mark_iteration(): in marker mode, starts the next iteration. Calls before the
  // first mark belong to iteration 0; a first mark with no calls before it does not advance.
  void mark();

  std::int64_t iteration() const noexcept { return iteration_; }
  std::int64_t iterations_seen() const noexcept { return iteration_ + 1; }

  static std::uint64_t link_key(const char* op, const void* ptr) noexcept;
  static std::uint64_t anchor_key(const char* op, const void* weight, const std::int64_t* dims, int nd) noexcept;

 private:
  void start_iteration();
  // What a forward call with this key does: 0 nothing, 1 becomes the first anchor, 2 starts the
  // next iteration.
  int forward_effect(std::uint64_t anchor_key) const noexcept;
  LayerAssign assign_forward(const char* op, int effect) const;

  IterationMode mode_;
  std::int64_t calls_per_iteration_;
  std::int64_t iteration_ = 0;
  bool have_anchor_ = false;
  std::uint64_t anchor_ = 0;
  bool backward_since_start_ = false;
  bool ever_backward_ = false;
  std::int64_t forward_calls_ = 0;  // in this iteration
  bool marked_once_ = false;
  std::unordered_map<std::string, int> per_op_;
  struct Layer {
    std::int32_t index;
    std::string name;
  };
  std::unordered_map<std::uint64_t, Layer> links_;
};

}  // namespace cdma::capture
