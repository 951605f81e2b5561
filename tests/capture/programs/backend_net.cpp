// Convolutions through the cuDNN backend (graph) API the way PyTorch 2.x drives it
// (aten/src/ATen/native/cudnn/Conv_v8.cpp via cudnn-frontend): tensors with UIDs 'x', 'w', 'y';
// one op graph per convolution, heuristics results into pre-created engine configs, an execution
// plan kept in a cache while every other descriptor is destroyed, and a new variant pack per
// execution. conv0 is a plain convolution; conv1 is a fused conv + ReLU graph with a virtual
// intermediate. Backward uses the same UIDs with PyTorch's roles (dgrad: x = grad_input,
// y = grad_output; wgrad: x = saved input, y = grad_output, w = grad_weight).
//
// Options: --iterations N  --expect FILE  --nhwc  --mark
//   --retry-plans: in iteration 0 every execution first runs a plan that fails (NOT_SUPPORTED, the
//   fake's cudnnFakeFailNextExecutes) and then the one that works, like PyTorch's try_plans.
#include "prog_common.hpp"

#include <cudnn.h>

#include <vector>

namespace {

int g_bad = 0;
void check(cudnnStatus_t st, const char* what) {
  if (st != CUDNN_STATUS_SUCCESS) {
    std::fprintf(stderr, "backend_net: %s failed with %d\n", what, static_cast<int>(st));
    g_bad = 1;
  }
}

bool g_nhwc = false;

cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t t) {
  cudnnBackendDescriptor_t d;
  check(cudnnBackendCreateDescriptor(t, &d), "create");
  return d;
}

cudnnBackendDescriptor_t tensor(int64_t uid, std::vector<int64_t> dims, bool is_virtual = false) {
  auto d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  std::vector<int64_t> strides(4);
  if (g_nhwc) {  // dims stay N, C, H, W; channels are innermost in memory
    strides = {dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]};
  } else {
    strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  }
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  int64_t align = 16;
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt), "dtype");
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data()), "dims");
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data()), "strides");
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid), "uid");
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align), "align");
  check(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual), "virtual");
  check(cudnnBackendFinalize(d), "tensor finalize");
  return d;
}

void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t v) {
  check(cudnnBackendSetAttribute(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v), "set descriptor");
}

// Builds a plan for the given operations; destroys every descriptor except the plan.
cudnnBackendDescriptor_t plan_for(cudnnHandle_t h, std::vector<cudnnBackendDescriptor_t> ops,
                                  std::vector<cudnnBackendDescriptor_t> garbage) {
  auto graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  check(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                 static_cast<int64_t>(ops.size()), ops.data()),
        "graph ops");
  check(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h), "graph handle");
  check(cudnnBackendFinalize(graph), "graph finalize");
  auto heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_INSTANT;
  check(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode), "heur mode");
  check(cudnnBackendFinalize(heur), "heur finalize");
  auto cfg = make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  int64_t count = 0;
  check(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, &cfg),
        "heur results");
  auto plan = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
  check(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h), "plan handle");
  check(cudnnBackendFinalize(plan), "plan finalize");
  // PyTorch keeps only the plan (in its LRU cache).
  for (auto d : ops) cudnnBackendDestroyDescriptor(d);
  for (auto d : garbage) cudnnBackendDestroyDescriptor(d);
  cudnnBackendDestroyDescriptor(graph);
  cudnnBackendDestroyDescriptor(heur);
  cudnnBackendDestroyDescriptor(cfg);
  return plan;
}

cudnnBackendDescriptor_t conv_op(cudnnBackendDescriptorType_t type, cudnnBackendAttributeName_t a,
                                 cudnnBackendDescriptor_t ta, cudnnBackendAttributeName_t b,
                                 cudnnBackendDescriptor_t tb, cudnnBackendAttributeName_t c,
                                 cudnnBackendDescriptor_t tc, std::vector<cudnnBackendDescriptor_t>& garbage) {
  auto conv = make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  int64_t spatial = 2;
  check(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial),
        "conv dims");
  check(cudnnBackendFinalize(conv), "conv finalize");
  auto op = make(type);
  set_desc(op, a, ta);
  set_desc(op, b, tb);
  set_desc(op, c, tc);
  cudnnBackendAttributeName_t conv_attr = type == CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR
                                              ? CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC
                                          : type == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR
                                              ? CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC
                                              : CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC;
  set_desc(op, conv_attr, conv);
  check(cudnnBackendFinalize(op), "op finalize");
  garbage.push_back(conv);
  garbage.push_back(ta);
  garbage.push_back(tb);
  garbage.push_back(tc);
  return op;
}

extern "C" void cudnnFakeFailNextExecutes(int n);
bool g_retry = false;

void execute(cudnnHandle_t h, cudnnBackendDescriptor_t plan, std::vector<int64_t> uids, std::vector<void*> ptrs,
             void* ws, const char* what) {
  auto vp = make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  check(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                 static_cast<int64_t>(uids.size()), uids.data()),
        "vp uids");
  check(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                 static_cast<int64_t>(ptrs.size()), ptrs.data()),
        "vp pointers");
  check(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws), "vp ws");
  check(cudnnBackendFinalize(vp), "vp finalize");
  if (g_retry) {
    cudnnFakeFailNextExecutes(1);
    if (cudnnBackendExecute(h, plan, vp) != CUDNN_STATUS_NOT_SUPPORTED) {
      std::fprintf(stderr, "backend_net: the failing plan of %s did not fail\n", what);
      g_bad = 1;
    }
  }
  check(cudnnBackendExecute(h, plan, vp), what);
  cudnnBackendDestroyDescriptor(vp);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = std::atoi(prog::arg(argc, argv, "--iterations", "3"));
  g_nhwc = prog::flag(argc, argv, "--nhwc");
  const bool mark = prog::flag(argc, argv, "--mark");
  prog::Expected expected(prog::arg(argc, argv, "--expect", nullptr));
  cuInit(0);
  cudnnHandle_t h;
  cudnnCreate(&h);
  CUstream stream;
  cuStreamCreate(&stream, 0);
  cudnnSetStream(h, reinterpret_cast<cudaStream_t>(stream));

  const int64_t N = 2;
  const std::vector<int64_t> xa{N, 3, 8, 8}, wa{4, 3, 3, 3}, ya{N, 4, 8, 8}, wb{4, 4, 3, 3};
  const int64_t X = 'x', W = 'w', Y = 'y', C = 'C';
  std::vector<cudnnBackendDescriptor_t> g;
  // conv0 forward: plain convolution.
  auto p0 = plan_for(
      h,
      {conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
               tensor(X, xa), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, tensor(W, wa),
               CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, tensor(Y, ya), g)},
      g);
  g.clear();
  // conv1 forward: conv (virtual output C) + ReLU.
  auto conv1 =
      conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
              tensor(X, ya), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, tensor(W, wb),
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, tensor(C, ya, true), g);
  auto pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  cudnnPointwiseMode_t relu = CUDNN_POINTWISE_RELU_FWD;
  check(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &relu), "pw mode");
  check(cudnnBackendFinalize(pw), "pw finalize");
  auto act = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  set_desc(act, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
  auto cvirt = tensor(C, ya, true), yb = tensor(Y, ya);
  set_desc(act, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, cvirt);
  set_desc(act, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, yb);
  check(cudnnBackendFinalize(act), "act finalize");
  g.push_back(pw);
  g.push_back(cvirt);
  g.push_back(yb);
  auto p1 = plan_for(h, {conv1, act}, g);
  g.clear();
  // conv1 backward data and filter, conv0 backward filter (PyTorch's UID roles).
  auto p1d = plan_for(
      h,
      {conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, tensor(X, ya), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
               tensor(W, wb), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, tensor(Y, ya), g)},
      g);
  g.clear();
  auto p1f = plan_for(h,
                      {conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, tensor(X, ya),
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, tensor(W, wb),
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, tensor(Y, ya), g)},
                      g);
  g.clear();
  auto p0f = plan_for(h,
                      {conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, tensor(X, xa),
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, tensor(W, wa),
                               CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, tensor(Y, ya), g)},
                      g);

  auto bytes = [](const std::vector<int64_t>& d) { return static_cast<std::size_t>(d[0] * d[1] * d[2] * d[3] * 4); };
  void *x0 = prog::dalloc(bytes(xa)), *w0 = prog::dalloc(bytes(wa)), *y0 = prog::dalloc(bytes(ya)),
       *w1 = prog::dalloc(bytes(wb)), *y1 = prog::dalloc(bytes(ya)), *g1 = prog::dalloc(bytes(ya)),
       *g2 = prog::dalloc(bytes(ya)), *dw = prog::dalloc(bytes(wb)), *ws = prog::dalloc(4096);
  prog::fill(w0, bytes(wa) / 4, 77);
  prog::fill(w1, bytes(wb) / 4, 78);
  const bool retry = prog::flag(argc, argv, "--retry-plans");
  for (int it = 0; it < iterations; ++it) {
    g_retry = retry && it == 0;
    if (mark) prog::mark_iteration();
    prog::fill(x0, bytes(xa) / 4, 100 + static_cast<std::uint64_t>(it));
    expected.add("conv0", it, prog::read_back(x0, bytes(xa)));
    execute(h, p0, {X, W, Y}, {x0, w0, y0}, ws, "conv0 forward");
    expected.add("conv1", it, prog::read_back(y0, bytes(ya)));
    execute(h, p1, {X, W, Y}, {y0, w1, y1}, ws, "conv1 forward (fused ReLU)");
    prog::fill(g2, bytes(ya) / 4, 900 + static_cast<std::uint64_t>(it));
    execute(h, p1d, {X, W, Y}, {g1, w1, g2}, ws, "conv1 backward data");
    execute(h, p1f, {X, W, Y}, {y0, dw, g2}, ws, "conv1 backward filter");
    execute(h, p0f, {X, W, Y}, {x0, dw, g1}, ws, "conv0 backward filter");
  }
  for (auto p : {p0, p1, p1d, p1f, p0f}) cudnnBackendDestroyDescriptor(p);
  cudnnDestroy(h);
  return g_bad ? 3 : 0;
}
