// Staging ring over one pinned host buffer: slots are reserved in call order and released by the
// writer in any order; space is reclaimed from the oldest slot as soon as it is free. Not
// thread-safe by itself (the runtime holds a mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace cdma::capture {

class Ring {
 public:
  void reset(std::size_t capacity) {
    cap_ = capacity;
    head_ = tail_ = used_ = 0;
    slots_.clear();
  }
  std::size_t capacity() const noexcept { return cap_; }
  std::size_t used() const noexcept { return used_; }

  // Reserves n contiguous bytes (8-byte aligned). Returns false when there is no room now.
  bool reserve(std::size_t n, std::size_t& off) {
    n = (n + 7) & ~std::size_t{7};
    if (n == 0 || n > cap_) return false;
    if (used_ == 0) head_ = tail_ = 0;
    std::size_t waste = 0;
    if (used_ == 0 || head_ > tail_) {
      // Free space: [head, cap) and [0, tail).
      if (cap_ - head_ >= n) {
        off = head_;
      } else if (tail_ >= n) {
        waste = cap_ - head_;
        off = 0;
      } else {
        return false;
      }
    } else {
      // Wrapped (head <= tail with data): free space is [head, tail).
      if (tail_ - head_ >= n)
        off = head_;
      else
        return false;
    }
    if (waste) {
      // Account the unusable end as part of the previous slot, or as its own freed slot.
      slots_.push_back({head_, waste, true});
      used_ += waste;
    }
    slots_.push_back({off, n, false});
    used_ += n;
    head_ = off + n;
    if (head_ == cap_) head_ = 0;
    return true;
  }

  // Releases the slot that starts at `off` (as returned by reserve).
  void release(std::size_t off) {
    for (auto& s : slots_) {
      if (!s.freed && s.off == off) {
        s.freed = true;
        break;
      }
    }
    while (!slots_.empty() && slots_.front().freed) {
      const Slot& s = slots_.front();
      used_ -= s.len;
      tail_ = s.off + s.len;
      if (tail_ == cap_) tail_ = 0;
      slots_.pop_front();
    }
    if (used_ == 0) head_ = tail_ = 0;
  }

 private:
  struct Slot {
    std::size_t off, len;
    bool freed;
  };
  std::size_t cap_ = 0, head_ = 0, tail_ = 0, used_ = 0;
  std::deque<Slot> slots_;
};

}  // namespace cdma::capture
