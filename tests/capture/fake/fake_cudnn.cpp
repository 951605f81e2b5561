// Fake cuDNN 9 (soname libcudnn.so.9, symbols under the version node libcudnn.so.9 like the real
// shim) for the capture tests. Host memory stands in for device memory (fake_cuda.cpp). The
// "kernels" are simple, deterministic element-wise stand-ins (conv: y = 0.5 x - 0.25 cyclically,
// relu, 2:1 pooling, identity batch norm, C += A) - enough that the tensors a program passes
// change from call to call and in-place calls really overwrite their input.
//
// Status codes follow the real library: CUDNN_STATUS_BAD_PARAM for null data pointers, and
// cudnnConvolutionForward returns CUDNN_STATUS_NOT_SUPPORTED for algo 7 (a hook the tests use to
// check that the interposer passes statuses through). The backend API keeps attributes, links
// heuristics results to their graph, refuses (like cuDNN 9.19) to return variant-pack UIDs and
// pointers, and executes conv forward/backward and pointwise ReLU graphs.
// cudnnFakeFailNextExecutes(n) makes the next n cudnnBackendExecute calls return
// CUDNN_STATUS_NOT_SUPPORTED without running (a plan that cannot run, as PyTorch's try_plans meets).
#include <cudnn.h>
#include <cupti.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int nd = 0;
  int dims[8] = {};
  int strides[8] = {};
};
struct cudnnFilterStruct {
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int dims[4] = {};
};
struct cudnnActivationStruct {
  cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
  double coef = 0;
};
struct cudnnOpTensorStruct {
  cudnnOpTensorOp_t op = CUDNN_OP_TENSOR_ADD;
};
struct cudnnConvolutionStruct {
  int unused = 0;
};
struct cudnnPoolingStruct {
  int unused = 0;
};

namespace {

void kernel(const char* name, uint64_t ns) {
  using LogFn = void (*)(const char*);
  using KernFn = void (*)(uint64_t);
  static auto log = reinterpret_cast<LogFn>(dlsym(RTLD_DEFAULT, "fakecuda_log"));
  static auto kern = reinterpret_cast<KernFn>(dlsym(RTLD_DEFAULT, "fakecupti_kernel"));
  if (log) {
    char line[128];
    std::snprintf(line, sizeof(line), "cudnn %s", name);
    log(line);
  }
  if (kern) kern(ns);
}

int64_t elements(const cudnnTensorStruct* d) {
  int64_t n = 1;
  for (int i = 0; i < d->nd; ++i) n *= d->dims[i];
  return n;
}
int64_t extent(const cudnnTensorStruct* d) {
  int64_t e = 1;
  for (int i = 0; i < d->nd; ++i) e += static_cast<int64_t>(d->dims[i] - 1) * d->strides[i];
  return e;
}
float* F(const void* p) { return static_cast<float*>(const_cast<void*>(p)); }

}  // namespace

FAKE_EXPORT size_t cudnnGetVersion(void) { return 91900; }
FAKE_EXPORT const char* cudnnGetErrorString(cudnnStatus_t s) {
  return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "fake cuDNN error";
}
FAKE_EXPORT cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  *h = new cudnnContext;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnGetStream(cudnnHandle_t h, cudaStream_t* s) {
  if (!h || !s) return CUDNN_STATUS_BAD_PARAM;
  *s = h->stream;
  return CUDNN_STATUS_SUCCESS;
}

// --- descriptors -------------------------------------------------------------------------------
FAKE_EXPORT cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  *d = new cudnnTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t t, int n, int c,
                                                       int h, int w, int ns, int cs, int hs, int ws) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  d->dtype = t;
  d->nd = 4;
  int dims[4] = {n, c, h, w}, str[4] = {ns, cs, hs, ws};
  std::memcpy(d->dims, dims, sizeof(dims));
  std::memcpy(d->strides, str, sizeof(str));
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                                     cudnnDataType_t t, int n, int c, int h, int w) {
  if (f == CUDNN_TENSOR_NHWC) return cudnnSetTensor4dDescriptorEx(d, t, n, c, h, w, h * w * c, 1, w * c, c);
  return cudnnSetTensor4dDescriptorEx(d, t, n, c, h, w, c * h * w, h * w, w, 1);
}
FAKE_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t t, int nd,
                                                     const int* dims, const int* strides) {
  if (nd < 1 || nd > 8) return CUDNN_STATUS_BAD_PARAM;
  d->dtype = t;
  d->nd = nd;
  for (int i = 0; i < nd; ++i) {
    d->dims[i] = dims[i];
    d->strides[i] = strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t d, int req, cudnnDataType_t* t,
                                                     int* nd, int* dims, int* strides) {
  if (!d || d->nd == 0) return CUDNN_STATUS_BAD_PARAM;
  *t = d->dtype;
  *nd = d->nd;
  for (int i = 0; i < d->nd && i < req; ++i) {
    dims[i] = d->dims[i];
    strides[i] = d->strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t d, size_t* n) {
  *n = static_cast<size_t>(extent(d)) * (d->dtype == CUDNN_DATA_FLOAT ? 4 : d->dtype == CUDNN_DATA_HALF ? 2 : 1);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  *d = new cudnnFilterStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t,
                                                     int k, int c, int h, int w) {
  d->dtype = t;
  int dims[4] = {k, c, h, w};
  std::memcpy(d->dims, dims, sizeof(dims));
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  *d = new cudnnConvolutionStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* d) {
  *d = new cudnnPoolingStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* d) {
  *d = new cudnnActivationStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d, cudnnActivationMode_t m,
                                                       cudnnNanPropagation_t, double coef) {
  d->mode = m;
  d->coef = coef;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnGetActivationDescriptor(const cudnnActivationDescriptor_t d, cudnnActivationMode_t* m,
                                                       cudnnNanPropagation_t* nan, double* coef) {
  *m = d->mode;
  *nan = CUDNN_NOT_PROPAGATE_NAN;
  *coef = d->coef;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnCreateOpTensorDescriptor(cudnnOpTensorDescriptor_t* d) {
  *d = new cudnnOpTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSetOpTensorDescriptor(cudnnOpTensorDescriptor_t d, cudnnOpTensorOp_t op, cudnnDataType_t,
                                                     cudnnNanPropagation_t) {
  d->op = op;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnGetOpTensorDescriptor(const cudnnOpTensorDescriptor_t d, cudnnOpTensorOp_t* op,
                                                     cudnnDataType_t* t, cudnnNanPropagation_t* nan) {
  *op = d->op;
  *t = CUDNN_DATA_FLOAT;
  *nan = CUDNN_NOT_PROPAGATE_NAN;
  return CUDNN_STATUS_SUCCESS;
}

// --- legacy compute (float32 only; element i of y from element i of x, cyclically) ---------------
namespace {
void conv_like(const cudnnTensorStruct* xd, const void* x, const cudnnTensorStruct* yd, void* y) {
  int64_t nx = extent(xd), ny = extent(yd);
  for (int64_t i = 0; i < ny; ++i) F(y)[i] = 0.5f * F(x)[i % nx] - 0.25f;
}
}  // namespace

FAKE_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void*, const cudnnTensorDescriptor_t xDesc,
                                                  const void* x, const cudnnFilterDescriptor_t, const void* w,
                                                  const cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t algo,
                                                  void*, size_t, const void*, const cudnnTensorDescriptor_t yDesc,
                                                  void* y) {
  if (!x || !y || !w) return CUDNN_STATUS_BAD_PARAM;
  if (algo == 7) return CUDNN_STATUS_NOT_SUPPORTED;
  conv_like(xDesc, x, yDesc, y);
  kernel("cudnnConvolutionForward", 5000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void*, const cudnnFilterDescriptor_t,
                                                       const void* w, const cudnnTensorDescriptor_t dyDesc,
                                                       const void* dy, const cudnnConvolutionDescriptor_t,
                                                       cudnnConvolutionBwdDataAlgo_t, void*, size_t, const void*,
                                                       const cudnnTensorDescriptor_t dxDesc, void* dx) {
  if (!w || !dy || !dx) return CUDNN_STATUS_BAD_PARAM;
  conv_like(dyDesc, dy, dxDesc, dx);
  kernel("cudnnConvolutionBackwardData", 6000);
  kernel("cudnnConvolutionBackwardData.splitk", 1000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void*, const cudnnTensorDescriptor_t,
                                                         const void* x, const cudnnTensorDescriptor_t, const void* dy,
                                                         const cudnnConvolutionDescriptor_t,
                                                         cudnnConvolutionBwdFilterAlgo_t, void*, size_t, const void*,
                                                         const cudnnFilterDescriptor_t, void* dw) {
  if (!x || !dy || !dw) return CUDNN_STATUS_BAD_PARAM;
  kernel("cudnnConvolutionBackwardFilter", 7000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnActivationForward(cudnnHandle_t, cudnnActivationDescriptor_t, const void*,
                                                 const cudnnTensorDescriptor_t xDesc, const void* x, const void*,
                                                 const cudnnTensorDescriptor_t, void* y) {
  if (!x || !y) return CUDNN_STATUS_BAD_PARAM;
  int64_t n = extent(xDesc);
  for (int64_t i = 0; i < n; ++i) F(y)[i] = F(x)[i] > 0 ? F(x)[i] : 0.0f;  // works in place
  kernel("cudnnActivationForward", 1000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnActivationBackward(cudnnHandle_t, cudnnActivationDescriptor_t, const void*,
                                                  const cudnnTensorDescriptor_t, const void* y,
                                                  const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                  const cudnnTensorDescriptor_t, const void* x, const void*,
                                                  const cudnnTensorDescriptor_t, void* dx) {
  if (!y || !dy || !x || !dx) return CUDNN_STATUS_BAD_PARAM;
  int64_t n = extent(dyDesc);
  for (int64_t i = 0; i < n; ++i) F(dx)[i] = F(y)[i] > 0 ? F(dy)[i] : 0.0f;
  kernel("cudnnActivationBackward", 1000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnPoolingForward(cudnnHandle_t, const cudnnPoolingDescriptor_t, const void*,
                                              const cudnnTensorDescriptor_t xDesc, const void* x, const void*,
                                              const cudnnTensorDescriptor_t yDesc, void* y) {
  if (!x || !y) return CUDNN_STATUS_BAD_PARAM;
  int64_t nx = extent(xDesc), ny = extent(yDesc);
  for (int64_t i = 0; i < ny; ++i) F(y)[i] = std::fmax(F(x)[(2 * i) % nx], F(x)[(2 * i + 1) % nx]);
  kernel("cudnnPoolingForward", 1000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t, const cudnnPoolingDescriptor_t, const void*,
                                               const cudnnTensorDescriptor_t, const void* y,
                                               const cudnnTensorDescriptor_t, const void* dy,
                                               const cudnnTensorDescriptor_t, const void* x, const void*,
                                               const cudnnTensorDescriptor_t dxDesc, void* dx) {
  if (!y || !dy || !x || !dx) return CUDNN_STATUS_BAD_PARAM;
  std::memset(dx, 0, static_cast<size_t>(extent(dxDesc)) * 4);
  kernel("cudnnPoolingBackward", 1000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t, cudnnBatchNormMode_t, const void*,
                                                                 const void*, const cudnnTensorDescriptor_t xDesc,
                                                                 const void* x, const cudnnTensorDescriptor_t, void* y,
                                                                 const cudnnTensorDescriptor_t, const void* scale,
                                                                 const void*, double, void*, void*, double, void*,
                                                                 void*) {
  if (!x || !y || !scale) return CUDNN_STATUS_BAD_PARAM;
  if (x != y) std::memcpy(y, x, static_cast<size_t>(extent(xDesc)) * 4);
  kernel("cudnnBatchNormalizationForwardTraining", 2000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t, cudnnBatchNormMode_t, const void*, const void*,
                                                          const void*, const void*, const cudnnTensorDescriptor_t xDesc,
                                                          const void* x, const cudnnTensorDescriptor_t, const void* dy,
                                                          const cudnnTensorDescriptor_t, void* dx,
                                                          const cudnnTensorDescriptor_t, const void* scale, void*,
                                                          void*, double, const void*, const void*) {
  if (!x || !dy || !dx || !scale) return CUDNN_STATUS_BAD_PARAM;
  std::memcpy(dx, dy, static_cast<size_t>(extent(xDesc)) * 4);
  kernel("cudnnBatchNormalizationBackward", 2000);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnAddTensor(cudnnHandle_t, const void*, const cudnnTensorDescriptor_t aDesc, const void* A,
                                         const void*, const cudnnTensorDescriptor_t cDesc, void* C) {
  if (!A || !C) return CUDNN_STATUS_BAD_PARAM;
  int64_t na = extent(aDesc), nc = extent(cDesc);
  for (int64_t i = 0; i < nc; ++i) F(C)[i] += F(A)[i % na];
  kernel("cudnnAddTensor", 500);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t, cudnnSoftmaxAlgorithm_t, cudnnSoftmaxMode_t, const void*,
                                              const cudnnTensorDescriptor_t xDesc, const void* x, const void*,
                                              const cudnnTensorDescriptor_t, void* y) {
  if (!x || !y) return CUDNN_STATUS_BAD_PARAM;
  int64_t n = extent(xDesc);
  for (int64_t i = 0; i < n; ++i) F(y)[i] = 1.0f / (1.0f + std::exp(-F(x)[i]));
  kernel("cudnnSoftmaxForward", 500);
  return CUDNN_STATUS_SUCCESS;
}

// --- backend API ------------------------------------------------------------------------------------
namespace {
struct BDesc {
  cudnnBackendDescriptorType_t type;
  bool finalized = false;
  std::map<int, std::vector<unsigned char>> attrs;
  BDesc* graph = nullptr;  // engcfg filled by heuristics: the graph it runs
};
std::mutex g_bmu;

template <class T>
bool attr(const BDesc* d, int name, std::vector<T>& out) {
  auto it = d->attrs.find(name);
  if (it == d->attrs.end()) return false;
  out.resize(it->second.size() / sizeof(T));
  std::memcpy(out.data(), it->second.data(), out.size() * sizeof(T));
  return true;
}
BDesc* one_desc(const BDesc* d, int name) {
  std::vector<BDesc*> v;
  return attr(d, name, v) && !v.empty() ? v[0] : nullptr;
}
BDesc* graph_of(BDesc* d) {
  for (int i = 0; d && i < 4; ++i) {
    if (d->type == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR) return d;
    if (d->graph) return d->graph;
    if (d->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)
      d = one_desc(d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG);
    else if (d->type == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)
      d = one_desc(d, CUDNN_ATTR_ENGINECFG_ENGINE);
    else if (d->type == CUDNN_BACKEND_ENGINE_DESCRIPTOR)
      d = one_desc(d, CUDNN_ATTR_ENGINE_OPERATION_GRAPH);
    else
      return nullptr;
  }
  return nullptr;
}
struct T {
  int64_t uid = 0;
  int64_t elems = 0;
  bool ok = false;
};
T tensor(const BDesc* op, int name) {
  T t;
  const BDesc* d = one_desc(op, name);
  if (!d) return t;
  std::vector<int64_t> v, dims, strides;
  if (!attr(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, v) || !attr(d, CUDNN_ATTR_TENSOR_DIMENSIONS, dims) ||
      !attr(d, CUDNN_ATTR_TENSOR_STRIDES, strides))
    return t;
  t.uid = v[0];
  t.elems = 1;
  for (size_t i = 0; i < dims.size(); ++i) t.elems += (dims[i] - 1) * strides[i];
  t.ok = true;
  return t;
}
}  // namespace

FAKE_EXPORT cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t* d) {
  if (!d) return CUDNN_STATUS_BAD_PARAM;
  *d = reinterpret_cast<cudnnBackendDescriptor_t>(new BDesc{type});
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d) {
  // Never freed: the real library copies what a plan needs when it is finalised; the fake keeps
  // the descriptors instead (a test-only leak), so callers may destroy them as they would.
  if (!d) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                                                   cudnnBackendAttributeType_t type, int64_t n, const void* elems) {
  auto* b = reinterpret_cast<BDesc*>(d);
  if (!b || !elems || n < 0) return CUDNN_STATUS_BAD_PARAM;
  if (b->finalized) return CUDNN_STATUS_NOT_SUPPORTED;
  size_t esz = type == CUDNN_TYPE_INT64 || type == CUDNN_TYPE_VOID_PTR || type == CUDNN_TYPE_BACKEND_DESCRIPTOR ||
                       type == CUDNN_TYPE_HANDLE || type == CUDNN_TYPE_DOUBLE
                   ? 8
               : type == CUDNN_TYPE_BOOLEAN || type == CUDNN_TYPE_CHAR ? 1
                                                                       : 4;
  std::vector<unsigned char> v(static_cast<size_t>(n) * esz);
  std::memcpy(v.data(), elems, v.size());
  b->attrs[name] = std::move(v);
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t d) {
  auto* b = reinterpret_cast<BDesc*>(d);
  if (!b) return CUDNN_STATUS_BAD_PARAM;
  if (b->type == CUDNN_BACKEND_TENSOR_DESCRIPTOR && !b->attrs.count(CUDNN_ATTR_TENSOR_DIMENSIONS))
    return CUDNN_STATUS_BAD_PARAM;
  if (b->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && !graph_of(b)) return CUDNN_STATUS_BAD_PARAM;
  b->finalized = true;
  return CUDNN_STATUS_SUCCESS;
}
FAKE_EXPORT cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const d, cudnnBackendAttributeName_t name,
                                                   cudnnBackendAttributeType_t, int64_t requested, int64_t* count,
                                                   void* elems) {
  auto* b = reinterpret_cast<BDesc*>(d);
  if (!b) return CUDNN_STATUS_BAD_PARAM;
  if (b->type == CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR &&
      (name == CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS || name == CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS))
    return CUDNN_STATUS_NOT_SUPPORTED;  // as cuDNN 9.19 (CAPTURE_NOTES.md E5)
  if (b->type == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR && name == CUDNN_ATTR_ENGINEHEUR_RESULTS) {
    BDesc* g = one_desc(b, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
    if (!g) return CUDNN_STATUS_BAD_PARAM;
    int64_t n = requested > 0 ? 1 : 0;
    if (count) *count = 1;
    for (int64_t i = 0; i < n && elems; ++i) {
      auto* cfg = static_cast<BDesc**>(elems)[i];
      cfg->graph = g;
      cfg->finalized = true;
    }
    return CUDNN_STATUS_SUCCESS;
  }
  auto it = b->attrs.find(name);
  if (it == b->attrs.end()) return CUDNN_STATUS_NOT_SUPPORTED;
  if (count) *count = 1;
  if (elems)
    std::memcpy(elems, it->second.data(), std::min<size_t>(it->second.size(), 8 * static_cast<size_t>(requested)));
  return CUDNN_STATUS_SUCCESS;
}
namespace {
int g_fail_executes = 0;
}
// Test hook (named cudnn* so that the version script exports it).
FAKE_EXPORT void cudnnFakeFailNextExecutes(int n) { g_fail_executes = n; }

FAKE_EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t, cudnnBackendDescriptor_t plan,
                                              cudnnBackendDescriptor_t vp) {
  if (g_fail_executes > 0) {
    --g_fail_executes;
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  auto* p = reinterpret_cast<BDesc*>(plan);
  auto* v = reinterpret_cast<BDesc*>(vp);
  if (!p || !v || !p->finalized || !v->finalized) return CUDNN_STATUS_BAD_PARAM;
  BDesc* g = graph_of(p);
  std::vector<int64_t> uids;
  std::vector<void*> ptrs;
  if (!g || !attr(v, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, uids) || !attr(v, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, ptrs))
    return CUDNN_STATUS_BAD_PARAM;
  std::map<int64_t, float*> mem;  // virtual tensors live in scratch memory
  std::vector<std::vector<float>> scratch;
  auto ptr = [&](const T& t) -> float* {
    for (size_t i = 0; i < uids.size() && i < ptrs.size(); ++i)
      if (uids[i] == t.uid) return static_cast<float*>(ptrs[i]);
    auto it = mem.find(t.uid);
    if (it != mem.end()) return it->second;
    scratch.emplace_back(static_cast<size_t>(t.elems));
    return mem[t.uid] = scratch.back().data();
  };
  std::vector<BDesc*> ops;
  attr(g, CUDNN_ATTR_OPERATIONGRAPH_OPS, ops);
  for (BDesc* op : ops) {
    if (op->type == CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR) {
      T x = tensor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X),
        y = tensor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y);
      if (!x.ok || !y.ok) return CUDNN_STATUS_BAD_PARAM;
      float *xp = ptr(x), *yp = ptr(y);
      for (int64_t i = 0; i < y.elems; ++i) yp[i] = 0.5f * xp[i % x.elems] - 0.25f;
      kernel("backend.conv_fwd", 5000);
    } else if (op->type == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR) {
      T dy = tensor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY),
        dx = tensor(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX);
      if (!dy.ok || !dx.ok) return CUDNN_STATUS_BAD_PARAM;
      float *a = ptr(dy), *c = ptr(dx);
      for (int64_t i = 0; i < dx.elems; ++i) c[i] = a[i % dy.elems];
      kernel("backend.conv_dgrad", 6000);
    } else if (op->type == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR) {
      kernel("backend.conv_wgrad", 7000);
    } else if (op->type == CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR) {
      T x = tensor(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC), y = tensor(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC);
      if (!x.ok || !y.ok) return CUDNN_STATUS_BAD_PARAM;
      float *xp = ptr(x), *yp = ptr(y);
      for (int64_t i = 0; i < y.elems; ++i) yp[i] = xp[i] > 0 ? xp[i] : 0.0f;
      kernel("backend.relu", 1000);
    }
  }
  return CUDNN_STATUS_SUCCESS;
}
