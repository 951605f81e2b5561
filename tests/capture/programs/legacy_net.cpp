// A small CNN training loop on the cuDNN legacy API, as a v7-style framework drives it:
// conv0 -> relu0 (in place) -> pool0 -> conv1 -> bn0 -> add0 (bias, in place) -> softmax0, then
// the backward calls. Runs against the fake cuDNN/CUDA (or anything with the same API).
//
// Options: --iterations N  --expect FILE (record each layer's X bytes as passed)
//   --nhwc (input in NHWC)  --padded (input with padded rows)  --graph-iter K (pretend iteration
//   K is captured into a CUDA graph)  --kill-iter K (SIGKILL itself at the start of iteration K)
//   --mark (call cdma_capture_mark_iteration each iteration)  --exit-code C
//   --status-checks (first make two calls that fail, and check their statuses)
//   --orphan-backward (end each iteration with a ReLU backward call on buffers no forward call
//   used: the interposer matches it to no forward layer)
// Exit codes: C (default 0); 3 when a cuDNN status differs from what the fake library returns
// (the interposer must pass statuses through unchanged).
#include "prog_common.hpp"

#include <cudnn.h>

#include <unistd.h>
#include <csignal>

extern "C" void fakecuda_set_capturing(int);

namespace {
int g_bad = 0;
void expect_status(cudnnStatus_t got, cudnnStatus_t want, const char* what) {
  if (got != want) {
    std::fprintf(stderr, "legacy_net: %s returned %d, expected %d\n", what, static_cast<int>(got),
                 static_cast<int>(want));
    g_bad = 1;
  }
}
cudnnTensorDescriptor_t tensor(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t d;
  cudnnCreateTensorDescriptor(&d);
  cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w);
  return d;
}
std::size_t bytes4(int n, int c, int h, int w) { return static_cast<std::size_t>(n) * c * h * w * 4; }
}  // namespace

int main(int argc, char** argv) {
  const int iterations = std::atoi(prog::arg(argc, argv, "--iterations", "3"));
  const int graph_iter = std::atoi(prog::arg(argc, argv, "--graph-iter", "-1"));
  const int kill_iter = std::atoi(prog::arg(argc, argv, "--kill-iter", "-1"));
  const int exit_code = std::atoi(prog::arg(argc, argv, "--exit-code", "0"));
  const bool nhwc = prog::flag(argc, argv, "--nhwc"), padded = prog::flag(argc, argv, "--padded");
  const bool mark = prog::flag(argc, argv, "--mark");
  const bool orphan = prog::flag(argc, argv, "--orphan-backward");
  prog::Expected expected(prog::arg(argc, argv, "--expect", nullptr));

  cuInit(0);
  cudnnHandle_t h;
  cudnnCreate(&h);
  CUstream stream;
  cuStreamCreate(&stream, 0);
  cudnnSetStream(h, reinterpret_cast<cudaStream_t>(stream));

  const int N = 2;
  // Input: NCHW, NHWC, or NCHW with rows padded to 10 floats.
  cudnnTensorDescriptor_t x0d;
  cudnnCreateTensorDescriptor(&x0d);
  std::size_t x0_bytes = bytes4(N, 3, 8, 8);
  if (nhwc) {
    cudnnSetTensor4dDescriptor(x0d, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, 3, 8, 8);
  } else if (padded) {
    cudnnSetTensor4dDescriptorEx(x0d, CUDNN_DATA_FLOAT, N, 3, 8, 8, 3 * 8 * 10, 8 * 10, 10, 1);
    x0_bytes = static_cast<std::size_t>(N) * 3 * 8 * 10 * 4;
  } else {
    cudnnSetTensor4dDescriptor(x0d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, 3, 8, 8);
  }
  auto y1d = tensor(N, 4, 8, 8), y2d = tensor(N, 4, 4, 4), y3d = tensor(N, 8, 4, 4), biasd = tensor(1, 8, 1, 1),
       smd = tensor(N, 128, 1, 1), bnd = tensor(1, 8, 1, 1);
  cudnnFilterDescriptor_t w0d, w1d;
  cudnnCreateFilterDescriptor(&w0d);
  cudnnSetFilter4dDescriptor(w0d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3);
  cudnnCreateFilterDescriptor(&w1d);
  cudnnSetFilter4dDescriptor(w1d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 8, 4, 3, 3);
  cudnnConvolutionDescriptor_t cd;
  cudnnCreateConvolutionDescriptor(&cd);
  cudnnActivationDescriptor_t relu;
  cudnnCreateActivationDescriptor(&relu);
  cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0);
  cudnnPoolingDescriptor_t pd;
  cudnnCreatePoolingDescriptor(&pd);

  void *x0 = prog::dalloc(x0_bytes), *y1 = prog::dalloc(bytes4(N, 4, 8, 8)), *y2 = prog::dalloc(bytes4(N, 4, 4, 4)),
       *y3 = prog::dalloc(bytes4(N, 8, 4, 4)), *y4 = prog::dalloc(bytes4(N, 8, 4, 4)),
       *y5 = prog::dalloc(bytes4(N, 8, 4, 4)), *w0 = prog::dalloc(4 * 3 * 9 * 4), *w1 = prog::dalloc(8 * 4 * 9 * 4),
       *bias = prog::dalloc(8 * 4), *scale = prog::dalloc(8 * 4), *bnb = prog::dalloc(8 * 4),
       *dw = prog::dalloc(8 * 4 * 9 * 4), *g1 = prog::dalloc(bytes4(N, 8, 8, 8)),
       *g2 = prog::dalloc(bytes4(N, 8, 8, 8)), *ws = prog::dalloc(1024);
  void *ox = prog::dalloc(bytes4(N, 4, 8, 8)), *oy = prog::dalloc(bytes4(N, 4, 8, 8)),
       *ody = prog::dalloc(bytes4(N, 4, 8, 8)), *odx = prog::dalloc(bytes4(N, 4, 8, 8));
  prog::fill(w0, 4 * 3 * 9, 1000);
  prog::fill(w1, 8 * 4 * 9, 1001);
  prog::fill(bias, 8, 1002);
  prog::fill(scale, 8, 1003);
  const float one = 1.0f, zero = 0.0f;

  // Status passthrough: the fake returns NOT_SUPPORTED for algo 7 and BAD_PARAM for null data.
  if (prog::flag(argc, argv, "--status-checks")) {
    expect_status(cudnnConvolutionForward(h, &one, x0d, x0, w0d, w0, cd, static_cast<cudnnConvolutionFwdAlgo_t>(7), ws,
                                          1024, &zero, y1d, y1),
                  CUDNN_STATUS_NOT_SUPPORTED, "cudnnConvolutionForward(algo 7)");
    expect_status(cudnnActivationForward(h, relu, &one, y1d, nullptr, &zero, y1d, y1), CUDNN_STATUS_BAD_PARAM,
                  "cudnnActivationForward(x = NULL)");
  }

  for (int it = 0; it < iterations; ++it) {
    if (it == kill_iter) {
      usleep(300000);  // let the interposer's writer drain what earlier iterations queued
      raise(SIGKILL);
    }
    if (mark) prog::mark_iteration();
    fakecuda_set_capturing(it == graph_iter ? 1 : 0);
    prog::fill(x0, x0_bytes / 4, static_cast<std::uint64_t>(it));
    auto rec = [&](const char* name, const void* p, std::size_t n) { expected.add(name, it, prog::read_back(p, n)); };
    // The X of conv0 as the trace stores it: NCHW packed from the padded rows, else as in memory.
    if (padded) {
      auto raw = prog::read_back(x0, x0_bytes);
      std::vector<unsigned char> packed;
      for (int r = 0; r < N * 3 * 8; ++r) packed.insert(packed.end(), raw.begin() + r * 40, raw.begin() + r * 40 + 32);
      expected.add("conv0", it, packed);
    } else {
      rec("conv0", x0, x0_bytes);
    }
    expect_status(cudnnConvolutionForward(h, &one, x0d, x0, w0d, w0, cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ws,
                                          1024, &zero, y1d, y1),
                  CUDNN_STATUS_SUCCESS, "conv0");
    rec("relu0", y1, bytes4(N, 4, 8, 8));
    expect_status(cudnnActivationForward(h, relu, &one, y1d, y1, &zero, y1d, y1), CUDNN_STATUS_SUCCESS,
                  "relu0 (in place)");
    rec("pool0", y1, bytes4(N, 4, 8, 8));
    expect_status(cudnnPoolingForward(h, pd, &one, y1d, y1, &zero, y2d, y2), CUDNN_STATUS_SUCCESS, "pool0");
    rec("conv1", y2, bytes4(N, 4, 4, 4));
    expect_status(cudnnConvolutionForward(h, &one, y2d, y2, w1d, w1, cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ws,
                                          1024, &zero, y3d, y3),
                  CUDNN_STATUS_SUCCESS, "conv1");
    rec("bn0", y3, bytes4(N, 8, 4, 4));
    expect_status(cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, y3d, y3, y3d, y4, bnd,
                                                         scale, bnb, 0.1, nullptr, nullptr, 1e-5, nullptr, nullptr),
                  CUDNN_STATUS_SUCCESS, "bn0");
    rec("add0", y4, bytes4(N, 8, 4, 4));
    expect_status(cudnnAddTensor(h, &one, biasd, bias, &one, y3d, y4), CUDNN_STATUS_SUCCESS, "add0 (in place)");
    rec("softmax0", y4, bytes4(N, 8, 4, 4));
    expect_status(
        cudnnSoftmaxForward(h, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one, smd, y4, &zero, smd, y5),
        CUDNN_STATUS_SUCCESS, "softmax0");
    // Backward.
    prog::fill(g1, bytes4(N, 8, 4, 4) / 4, 5000 + static_cast<std::uint64_t>(it));
    expect_status(cudnnBatchNormalizationBackward(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, y3d, y3, y3d,
                                                  g1, y3d, g2, bnd, scale, dw, dw, 1e-5, nullptr, nullptr),
                  CUDNN_STATUS_SUCCESS, "bn0 backward");
    expect_status(cudnnConvolutionBackwardFilter(h, &one, y2d, y2, y3d, g2, cd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, ws,
                                                 1024, &zero, w1d, dw),
                  CUDNN_STATUS_SUCCESS, "conv1 backward filter");
    expect_status(cudnnConvolutionBackwardData(h, &one, w1d, w1, y3d, g2, cd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, ws,
                                               1024, &zero, y2d, g1),
                  CUDNN_STATUS_SUCCESS, "conv1 backward data");
    expect_status(cudnnPoolingBackward(h, pd, &one, y2d, y2, y2d, g1, y1d, y1, &zero, y1d, g2), CUDNN_STATUS_SUCCESS,
                  "pool0 backward");
    expect_status(cudnnActivationBackward(h, relu, &one, y1d, y1, y1d, g2, y1d, y1, &zero, y1d, g1),
                  CUDNN_STATUS_SUCCESS, "relu0 backward");
    expect_status(cudnnConvolutionBackwardFilter(h, &one, x0d, x0, y1d, g1, cd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, ws,
                                                 1024, &zero, w0d, dw),
                  CUDNN_STATUS_SUCCESS, "conv0 backward filter");
    if (orphan) {
      prog::fill(ox, bytes4(N, 4, 8, 8) / 4, 7000 + static_cast<std::uint64_t>(it));
      expect_status(cudnnActivationBackward(h, relu, &one, y1d, oy, y1d, ody, y1d, ox, &zero, y1d, odx),
                    CUDNN_STATUS_SUCCESS, "unmatched relu backward");
    }
  }
  fakecuda_set_capturing(0);
  cudnnDestroy(h);
  if (g_bad) return 3;
  return exit_code;
}
