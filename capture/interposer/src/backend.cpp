// Wrappers of the cuDNN backend (graph) API: descriptor calls feed the shadow (shadow.hpp);
// cudnnBackendExecute joins the plan's shadowed operations with the variant pack's pointers and
// runs through run_call() like a legacy call. The real status is always returned unchanged.
#include "runtime.hpp"

#include <cudnn.h>

#include <cstring>

#define CDMA_EXPORT extern "C" __attribute__((visibility("default")))
#define REAL(name)                                                         \
  static const auto real = cdma::capture::real_fn<decltype(&name)>(#name); \
  if (!real) return cdma::capture::kNoRealFunction

using namespace cdma::capture;

namespace {
// Shadowing needs no capture to be active, only that we are not inside our own calls.
bool shadowing() { return capture_active(); }
}  // namespace

CDMA_EXPORT cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t descriptorType,
                                                       cudnnBackendDescriptor_t* descriptor) {
  REAL(cudnnBackendCreateDescriptor);
  cudnnStatus_t st = real(descriptorType, descriptor);
  if (st == CUDNN_STATUS_SUCCESS && descriptor && shadowing())
    backend_shadow().on_create(*descriptor, static_cast<int>(descriptorType));
  return st;
}

CDMA_EXPORT cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t descriptor) {
  REAL(cudnnBackendDestroyDescriptor);
  // Forget first: once the real call returns, another thread may get the same address.
  if (shadowing()) backend_shadow().on_destroy(descriptor);
  return real(descriptor);
}

CDMA_EXPORT cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t descriptor,
                                                   cudnnBackendAttributeName_t attributeName,
                                                   cudnnBackendAttributeType_t attributeType, int64_t elementCount,
                                                   const void* arrayOfElements) {
  REAL(cudnnBackendSetAttribute);
  cudnnStatus_t st = real(descriptor, attributeName, attributeType, elementCount, arrayOfElements);
  if (st == CUDNN_STATUS_SUCCESS && shadowing())
    backend_shadow().on_set(descriptor, static_cast<int>(attributeName), static_cast<int>(attributeType), elementCount,
                            arrayOfElements);
  return st;
}

CDMA_EXPORT cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const descriptor,
                                                   cudnnBackendAttributeName_t attributeName,
                                                   cudnnBackendAttributeType_t attributeType,
                                                   int64_t requestedElementCount, int64_t* elementCount,
                                                   void* arrayOfElements) {
  REAL(cudnnBackendGetAttribute);
  cudnnStatus_t st =
      real(descriptor, attributeName, attributeType, requestedElementCount, elementCount, arrayOfElements);
  if (st == CUDNN_STATUS_SUCCESS && arrayOfElements && shadowing()) {
    int64_t n = elementCount ? *elementCount : requestedElementCount;
    if (n > requestedElementCount) n = requestedElementCount;
    backend_shadow().on_get(descriptor, static_cast<int>(attributeName), static_cast<int>(attributeType), n,
                            arrayOfElements);
  }
  return st;
}

CDMA_EXPORT cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t descriptor) {
  REAL(cudnnBackendFinalize);
  cudnnStatus_t st = real(descriptor);
  if (st == CUDNN_STATUS_SUCCESS && shadowing()) backend_shadow().on_finalize(descriptor);
  return st;
}

CDMA_EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t executionPlan,
                                              cudnnBackendDescriptor_t variantPack) {
  REAL(cudnnBackendExecute);
  if (!capture_active()) return real(handle, executionPlan, variantPack);
  ExecuteView view;
  CallSpec cs;
  cs.api = "cudnnBackendExecute";
  cs.handle = handle;
  cs.flags = spool::kTlBackend;
  bool known = backend_shadow().execute_view(executionPlan, variantPack, view);
  const OpSnap* primary = known ? view.graph->primary() : nullptr;
  if (!primary) {
    cs.flags |= spool::kTlUnknownPlan;
    cs.op = "other";
  } else {
    cs.op = primary->op;
    cs.phase = primary->phase;
    // Operands: the layer input first, then the other materialised tensors (by uid, once each).
    std::int64_t seen[CallSpec::kMaxOperands];
    int nseen = 0;
    auto add_role = [&](const OpSnap& op, const char* want) {
      for (const auto& r : op.roles) {
        if (std::strcmp(r.role, want) != 0 || r.tensor->is_virtual || r.tensor->by_value) continue;
        bool dup = false;
        for (int i = 0; i < nseen; ++i) dup = dup || seen[i] == r.tensor->uid;
        void* p = view.pointer_of(r.tensor->uid);
        if (dup || !p || nseen >= CallSpec::kMaxOperands) continue;
        seen[nseen++] = r.tensor->uid;
        bool output = std::strcmp(want, "y") == 0 || std::strcmp(want, "dx") == 0;
        cs.add(r.role, p, &r.tensor->desc, output);
      }
    };
    add_role(*primary, "x");
    for (const char* role : {"x", "dy", "y", "dx"})
      for (const auto& op : view.graph->ops) add_role(*op, role);
    for (const auto& r : primary->roles) {
      void* p = r.tensor->is_virtual ? nullptr : view.pointer_of(r.tensor->uid);
      if (std::strcmp(r.role, "w") == 0 && p) {
        if (cs.phase == 0) cs.weight = p;
        cs.link("conv.w", p);
      }
      if (std::strcmp(r.role, "x") == 0 && p) cs.link(cs.op, p);
    }
  }
  return run_call(cs, [&] { return real(handle, executionPlan, variantPack); });
}
