#include "shadow.hpp"

#include <cudnn_graph.h>

#include <algorithm>
#include <cstring>

namespace cdma::capture {

namespace {

// Role of an operation attribute whose value is a tensor descriptor; nullptr when not a tensor
// role the capture cares about.
const char* role_of(int type, int name) {
  switch (type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X) return "x";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W) return "w";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y) return "y";
      break;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W) return "w";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY) return "dy";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX) return "dx";
      break;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X) return "x";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY) return "dy";
      if (name == CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW) return "dw";
      break;
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_XDESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_BDESC) return "b";
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_YDESC) return "y";
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_DXDESC) return "dx";
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_DYDESC) return "dy";
      break;
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_NORM_FWD_XDESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_NORM_FWD_YDESC) return "y";
      break;
    case CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_NORM_BWD_XDESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_NORM_BWD_DYDESC) return "dy";
      if (name == CUDNN_ATTR_OPERATION_NORM_BWD_DXDESC) return "dx";
      break;
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_MATMUL_ADESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_MATMUL_BDESC) return "w";
      if (name == CUDNN_ATTR_OPERATION_MATMUL_CDESC) return "y";
      break;
    case CUDNN_BACKEND_OPERATION_RESAMPLE_FWD_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_FWD_XDESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_FWD_YDESC) return "y";
      break;
    case CUDNN_BACKEND_OPERATION_RESAMPLE_BWD_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_BWD_DXDESC) return "dx";
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_BWD_DYDESC) return "dy";
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_BWD_XDESC) return "x";
      if (name == CUDNN_ATTR_OPERATION_RESAMPLE_BWD_YDESC) return "y";
      break;
    default:
      break;
  }
  return nullptr;
}

bool is_operation(int type) {
  switch (type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_RESAMPLE_FWD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_RESAMPLE_BWD_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_RNG_DESCRIPTOR:
      return true;
    default:
      return false;
  }
}

void name_op(OpSnap& op, int norm_mode) {
  switch (op.type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
      op.op = "conv";
      op.phase = 0;
      break;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
      op.op = "conv";
      op.phase = 1;
      break;
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR:
      op.op = norm_mode == CUDNN_BATCH_NORM || norm_mode < 0 ? "bn" : "other";
      op.phase = 0;
      break;
    case CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR:
      op.op = norm_mode == CUDNN_BATCH_NORM || norm_mode < 0 ? "bn" : "other";
      op.phase = 1;
      break;
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR:
      op.op = "linear";
      op.phase = 0;
      break;
    case CUDNN_BACKEND_OPERATION_RESAMPLE_FWD_DESCRIPTOR:
      op.op = "pool";
      op.phase = 0;
      break;
    case CUDNN_BACKEND_OPERATION_RESAMPLE_BWD_DESCRIPTOR:
      op.op = "pool";
      op.phase = 1;
      break;
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR: {
      int m = op.pointwise_mode;
      op.phase = m >= 200 && m < 300 ? 1 : 0;  // *_BWD modes are numbered from 200
      if (m == CUDNN_POINTWISE_RELU_FWD || m == CUDNN_POINTWISE_RELU_BWD)
        op.op = "relu";
      else if (m == CUDNN_POINTWISE_ADD)
        op.op = "add";
      else
        op.op = "other";
      break;
    }
    default:
      op.op = "other";
      op.phase = 0;
      break;
  }
}

int op_rank(const OpSnap& op) {
  if (std::strcmp(op.op, "conv") == 0) return 0;
  if (std::strcmp(op.op, "linear") == 0 || std::strcmp(op.op, "bn") == 0) return 1;
  if (std::strcmp(op.op, "pool") == 0) return 2;
  return 3;
}

}  // namespace

const OpSnap* GraphSnap::primary() const noexcept {
  const OpSnap* best = nullptr;
  for (const auto& o : ops)
    if (!best || op_rank(*o) < op_rank(*best)) best = o.get();
  return best;
}

void* ExecuteView::pointer_of(std::int64_t uid) const noexcept {
  for (std::size_t i = 0; i < uids.size() && i < pointers.size(); ++i)
    if (uids[i] == uid) return pointers[i];
  return nullptr;
}

void BackendShadow::on_create(void* desc, int type) {
  std::lock_guard lk(mu_);
  Shadow s;
  s.type = type;
  map_.insert_or_assign(desc, std::move(s));
}

void BackendShadow::on_destroy(void* desc) {
  std::lock_guard lk(mu_);
  map_.erase(desc);
}

std::size_t BackendShadow::live_descriptors() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

void BackendShadow::on_set(void* desc, int name, int attr_type, std::int64_t count, const void* elems) {
  if (!elems || count < 0 || count > 4096) return;
  std::lock_guard lk(mu_);
  auto it = map_.find(desc);
  if (it == map_.end()) return;
  Shadow& s = it->second;
  auto i64 = [&](std::vector<std::int64_t>& out) {
    out.assign(static_cast<const std::int64_t*>(elems), static_cast<const std::int64_t*>(elems) + count);
  };
  auto descs = [&]() {
    const auto* p = static_cast<void* const*>(elems);
    return std::vector<void*>(p, p + count);
  };
  switch (s.type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
      if (name == CUDNN_ATTR_TENSOR_DATA_TYPE && attr_type == CUDNN_TYPE_DATA_TYPE && count >= 1) {
        s.tensor.desc.cudnn_dtype = *static_cast<const int*>(elems);
      } else if ((name == CUDNN_ATTR_TENSOR_DIMENSIONS || name == CUDNN_ATTR_TENSOR_STRIDES) &&
                 attr_type == CUDNN_TYPE_INT64 && count <= spool::kMaxDims) {
        std::int64_t* dst = name == CUDNN_ATTR_TENSOR_DIMENSIONS ? s.tensor.desc.dims : s.tensor.desc.strides;
        std::memcpy(dst, elems, static_cast<std::size_t>(count) * sizeof(std::int64_t));
        if (name == CUDNN_ATTR_TENSOR_DIMENSIONS) s.tensor.desc.nd = static_cast<int>(count);
      } else if (name == CUDNN_ATTR_TENSOR_UNIQUE_ID && attr_type == CUDNN_TYPE_INT64 && count >= 1) {
        s.tensor.uid = *static_cast<const std::int64_t*>(elems);
      } else if (name == CUDNN_ATTR_TENSOR_IS_VIRTUAL && attr_type == CUDNN_TYPE_BOOLEAN && count >= 1) {
        s.tensor.is_virtual = *static_cast<const bool*>(elems);
      } else if (name == CUDNN_ATTR_TENSOR_IS_BY_VALUE && attr_type == CUDNN_TYPE_BOOLEAN && count >= 1) {
        s.tensor.by_value = *static_cast<const bool*>(elems);
      }
      break;
    case CUDNN_BACKEND_POINTWISE_DESCRIPTOR:
      if (name == CUDNN_ATTR_POINTWISE_MODE && attr_type == CUDNN_TYPE_POINTWISE_MODE && count >= 1)
        s.pointwise_mode = *static_cast<const int*>(elems);
      break;
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATIONGRAPH_OPS && attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR) s.ops = descs();
      break;
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINE_OPERATION_GRAPH && attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR && count >= 1)
        s.link = descs()[0];
      break;
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINECFG_ENGINE && attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR && count >= 1)
        s.link = descs()[0];
      break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH && attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR && count >= 1)
        s.link = descs()[0];
      break;
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
      if (name == CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG && attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR && count >= 1)
        s.link = descs()[0];
      break;
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
      if (name == CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS && attr_type == CUDNN_TYPE_INT64)
        i64(s.uids);
      else if (name == CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS && attr_type == CUDNN_TYPE_VOID_PTR) {
        const auto* p = static_cast<void* const*>(elems);
        s.pointers.assign(p, p + count);
      }
      break;
    default:
      if (is_operation(s.type)) {
        if (attr_type == CUDNN_TYPE_BACKEND_DESCRIPTOR && count >= 1) {
          void* d = descs()[0];
          auto& v = s.desc_attrs;
          v.erase(std::remove_if(v.begin(), v.end(), [&](auto& p) { return p.first == name; }), v.end());
          v.emplace_back(name, d);
        } else if (name == CUDNN_ATTR_OPERATION_NORM_FWD_MODE && attr_type == CUDNN_TYPE_NORM_MODE && count >= 1) {
          s.norm_mode = *static_cast<const int*>(elems);
        } else if (name == CUDNN_ATTR_OPERATION_NORM_BWD_MODE && attr_type == CUDNN_TYPE_NORM_MODE && count >= 1) {
          s.norm_mode = *static_cast<const int*>(elems);
        }
      }
      break;
  }
}

std::shared_ptr<const GraphSnap> BackendShadow::graph_of_locked(void* desc, int depth) const {
  if (!desc || depth > 4) return nullptr;
  auto it = map_.find(desc);
  if (it == map_.end()) return nullptr;
  const Shadow& s = it->second;
  if (s.graph_snap) return s.graph_snap;
  if (s.type == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR) return nullptr;  // not finalized
  return graph_of_locked(s.link, depth + 1);
}

void BackendShadow::on_finalize(void* desc) {
  std::lock_guard lk(mu_);
  auto it = map_.find(desc);
  if (it == map_.end()) return;
  Shadow& s = it->second;
  s.finalized = true;
  if (s.type == CUDNN_BACKEND_TENSOR_DESCRIPTOR) {
    s.tensor_snap = std::make_shared<const TensorSnap>(s.tensor);
  } else if (is_operation(s.type)) {
    auto op = std::make_shared<OpSnap>();
    op->type = s.type;
    for (const auto& [name, d] : s.desc_attrs) {
      if (name == CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR) {
        auto pw = map_.find(d);
        if (pw != map_.end()) op->pointwise_mode = pw->second.pointwise_mode;
        continue;
      }
      const char* role = role_of(s.type, name);
      if (!role) continue;
      auto t = map_.find(d);
      if (t == map_.end() || !t->second.tensor_snap) continue;
      op->roles.push_back({role, t->second.tensor_snap});
    }
    name_op(*op, s.norm_mode);
    s.op_snap = std::move(op);
  } else if (s.type == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR) {
    auto g = std::make_shared<GraphSnap>();
    for (void* o : s.ops) {
      auto oi = map_.find(o);
      if (oi != map_.end() && oi->second.op_snap) g->ops.push_back(oi->second.op_snap);
    }
    s.graph_snap = std::move(g);
  } else if (s.type == CUDNN_BACKEND_ENGINE_DESCRIPTOR || s.type == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR ||
             s.type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR || s.type == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR) {
    // Freeze the graph now: the descriptors the link goes through may be destroyed later.
    s.graph_snap = graph_of_locked(s.link, 0);
  }
}

void BackendShadow::on_get(void* desc, int name, int attr_type, std::int64_t count, const void* elems) {
  if (attr_type != CUDNN_TYPE_BACKEND_DESCRIPTOR || !elems || count <= 0) return;
  std::lock_guard lk(mu_);
  auto it = map_.find(desc);
  if (it == map_.end()) return;
  std::shared_ptr<const GraphSnap> g;
  if (name == CUDNN_ATTR_ENGINEHEUR_RESULTS || name == CUDNN_ATTR_ENGINECFG_ENGINE)
    g = graph_of_locked(desc, 0);
  else
    return;
  if (!g) return;
  const auto* p = static_cast<void* const*>(elems);
  for (std::int64_t i = 0; i < count; ++i) {
    auto t = map_.find(p[i]);
    if (t == map_.end()) continue;  // not created through us
    t->second.graph_snap = g;
  }
}

bool BackendShadow::execute_view(void* plan, void* vpack, ExecuteView& out) const {
  std::lock_guard lk(mu_);
  out.graph = graph_of_locked(plan, 0);
  auto v = map_.find(vpack);
  if (v == map_.end()) return false;
  out.uids = v->second.uids;
  out.pointers = v->second.pointers;
  return out.graph != nullptr;
}

}  // namespace cdma::capture
