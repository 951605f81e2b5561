// Shadow of cuDNN backend (graph API) descriptors, so that at cudnnBackendExecute the interposer
// knows, for every operation of the plan, which tensor plays which role and where it lives.
//
// cuDNN 9 cannot answer these questions itself (variant-pack UIDs and pointers, op-graph ops and
// op tensor UIDs are not gettable; see shared/reference/CAPTURE_NOTES.md §2.2), so every
// successful SetAttribute is recorded, Finalize freezes immutable by-value snapshots, and
// GetAttribute(ENGINEHEUR_RESULTS / ENGINECFG_ENGINE) links the configs cuDNN fills to their graph.
// Snapshots are reference-counted so that plans outlive the descriptors they were built from.
// Thread-safe (one mutex; never held while calling cuDNN).
#pragma once

#include "tensor_desc.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace cdma::capture {

struct TensorSnap {
  std::int64_t uid = 0;
  bool is_virtual = false;
  bool by_value = false;
  TensorDesc desc;
};

struct OpSnap {
  int type = -1;             // cudnnBackendDescriptorType_t
  const char* op = "other";  // trace op name
  int phase = 0;             // 0 forward, 1 backward
  int pointwise_mode = -1;
  struct Role {
    const char* role;  // "x", "y", "w", "dy", "dx", "dw", "b", ...
    std::shared_ptr<const TensorSnap> tensor;
  };
  std::vector<Role> roles;
};

struct GraphSnap {
  std::vector<std::shared_ptr<const OpSnap>> ops;
  // The op the call is named after: the first conv/matmul/norm op, else the first op.
  const OpSnap* primary() const noexcept;
};

// What Execute needs: the plan's graph (may be null for an unknown plan) and the variant pack.
struct ExecuteView {
  std::shared_ptr<const GraphSnap> graph;
  std::vector<std::int64_t> uids;
  std::vector<void*> pointers;
  void* pointer_of(std::int64_t uid) const noexcept;
};

class BackendShadow {
 public:
  void on_create(void* desc, int type);
  void on_destroy(void* desc);
  void on_set(void* desc, int name, int attr_type, std::int64_t count, const void* elems);
  void on_finalize(void* desc);
  // After a successful GetAttribute that returned `count` elements into `elems`.
  void on_get(void* desc, int name, int attr_type, std::int64_t count, const void* elems);
  // Fills `out` for an Execute. Returns false when the plan or variant pack is unknown.
  bool execute_view(void* plan, void* vpack, ExecuteView& out) const;
  std::size_t live_descriptors() const;

 private:
  struct Shadow {
    int type = -1;
    bool finalized = false;
    // Tensor attributes.
    TensorSnap tensor;
    // Operation: attribute name -> descriptor handles.
    std::vector<std::pair<int, void*>> desc_attrs;
    int pointwise_mode = -1;  // on a POINTWISE descriptor
    int norm_mode = -1;
    // Op graph: ops; engine/engcfg/heur/plan: the graph they lead to.
    std::vector<void*> ops;
    void* link = nullptr;  // engine->graph desc, engcfg->engine desc, plan->engcfg desc, heur->graph
    // Variant pack.
    std::vector<std::int64_t> uids;
    std::vector<void*> pointers;
    // Frozen snapshots.
    std::shared_ptr<const TensorSnap> tensor_snap;
    std::shared_ptr<const OpSnap> op_snap;
    std::shared_ptr<const GraphSnap> graph_snap;
  };
  std::shared_ptr<const GraphSnap> graph_of_locked(void* desc, int depth) const;

  mutable std::mutex mu_;
  std::unordered_map<void*, Shadow> map_;
};

}  // namespace cdma::capture
