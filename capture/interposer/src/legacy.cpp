// Wrappers of the cuDNN legacy (v7-style) calls that produce or consume activations in training
// (CAPTURE_NOTES.md §1.1). Each one resolves the real function from the host's libcudnn.so.9,
// describes its tensor arguments, and runs it through run_call(), which returns its status
// unchanged. Operand 0 is always the layer input X (iteration detection keys on its dims).
#include "runtime.hpp"

#include <cudnn.h>

#define CDMA_EXPORT extern "C" __attribute__((visibility("default")))
#define REAL(name)                                                         \
  static const auto real = cdma::capture::real_fn<decltype(&name)>(#name); \
  if (!real) return cdma::capture::kNoRealFunction

using cdma::capture::CallSpec;
using cdma::capture::run_call;

namespace {

const char* activation_op(cudnnActivationDescriptor_t d) {
  static const auto get =
      cdma::capture::real_fn<decltype(&cudnnGetActivationDescriptor)>("cudnnGetActivationDescriptor");
  cudnnActivationMode_t mode{};
  cudnnNanPropagation_t nan{};
  double coef = 0;
  if (!d || !get || get(d, &mode, &nan, &coef) != CUDNN_STATUS_SUCCESS) return "other";
  return mode == CUDNN_ACTIVATION_RELU || mode == CUDNN_ACTIVATION_CLIPPED_RELU ? "relu" : "other";
}

const char* optensor_op(cudnnOpTensorDescriptor_t d) {
  static const auto get = cdma::capture::real_fn<decltype(&cudnnGetOpTensorDescriptor)>("cudnnGetOpTensorDescriptor");
  cudnnOpTensorOp_t op{};
  cudnnDataType_t t{};
  cudnnNanPropagation_t nan{};
  if (!d || !get || get(d, &op, &t, &nan) != CUDNN_STATUS_SUCCESS) return "other";
  return op == CUDNN_OP_TENSOR_ADD ? "add" : "other";
}

CallSpec spec(const char* api, const char* op, int phase, cudnnHandle_t h) {
  CallSpec cs;
  cs.api = api;
  cs.op = op;
  cs.phase = phase;
  cs.handle = h;
  return cs;
}

}  // namespace

// --- convolution -------------------------------------------------------------------------------

CDMA_EXPORT cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                                  const cudnnFilterDescriptor_t wDesc, const void* w,
                                                  const cudnnConvolutionDescriptor_t convDesc,
                                                  cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                  size_t workSpaceSizeInBytes, const void* beta,
                                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnConvolutionForward);
  CallSpec cs = spec("cudnnConvolutionForward", "conv", 0, handle);
  cs.weight = w;
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("conv.x", x);
  cs.link("conv.w", w);
  return run_call(cs, [&] {
    return real(handle, alpha, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes, beta, yDesc, y);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void* alpha1, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes, const void* alpha2,
    const cudnnTensorDescriptor_t zDesc, const void* z, const cudnnTensorDescriptor_t biasDesc, const void* bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnConvolutionBiasActivationForward);
  CallSpec cs = spec("cudnnConvolutionBiasActivationForward", "conv", 0, handle);
  cs.weight = w;
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("conv.x", x);
  cs.link("conv.w", w);
  return run_call(cs, [&] {
    return real(handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workSpace, workSpaceSizeInBytes, alpha2, zDesc, z,
                biasDesc, bias, activationDesc, yDesc, y);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnFilterDescriptor_t wDesc, const void* w,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                       size_t workSpaceSizeInBytes, const void* beta,
                                                       const cudnnTensorDescriptor_t dxDesc, void* dx) {
  REAL(cudnnConvolutionBackwardData);
  CallSpec cs = spec("cudnnConvolutionBackwardData", "conv", 1, handle);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("conv.w", w);
  return run_call(cs, [&] {
    return real(handle, alpha, wDesc, w, dyDesc, dy, convDesc, algo, workSpace, workSpaceSizeInBytes, beta, dxDesc, dx);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                         const cudnnTensorDescriptor_t xDesc, const void* x,
                                                         const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                         const cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                         size_t workSpaceSizeInBytes, const void* beta,
                                                         const cudnnFilterDescriptor_t dwDesc, void* dw) {
  REAL(cudnnConvolutionBackwardFilter);
  CallSpec cs = spec("cudnnConvolutionBackwardFilter", "conv", 1, handle);
  cs.add("x", x, xDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.link("conv.x", x);
  return run_call(cs, [&] {
    return real(handle, alpha, xDesc, x, dyDesc, dy, convDesc, algo, workSpace, workSpaceSizeInBytes, beta, dwDesc, dw);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                                       void* db) {
  REAL(cudnnConvolutionBackwardBias);
  CallSpec cs = spec("cudnnConvolutionBackwardBias", "conv", 1, handle);
  cs.add("dy", dy, dyDesc, false);
  return run_call(cs, [&] { return real(handle, alpha, dyDesc, dy, beta, dbDesc, db); });
}

// --- activation, pooling, softmax ---------------------------------------------------------------

CDMA_EXPORT cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle, cudnnActivationDescriptor_t activationDesc,
                                                 const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
                                                 const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnActivationForward);
  CallSpec cs = spec("cudnnActivationForward", activation_op(activationDesc), 0, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("act.x", x);
  cs.link("act.y", y);
  return run_call(cs, [&] { return real(handle, activationDesc, alpha, xDesc, x, beta, yDesc, y); });
}

CDMA_EXPORT cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle, cudnnActivationDescriptor_t activationDesc,
                                                  const void* alpha, const cudnnTensorDescriptor_t yDesc, const void* y,
                                                  const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                                  const cudnnTensorDescriptor_t dxDesc, void* dx) {
  REAL(cudnnActivationBackward);
  CallSpec cs = spec("cudnnActivationBackward", activation_op(activationDesc), 1, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("act.x", x);
  cs.link("act.y", y);
  return run_call(
      cs, [&] { return real(handle, activationDesc, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx); });
}

CDMA_EXPORT cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                              const void* alpha, const cudnnTensorDescriptor_t xDesc, const void* x,
                                              const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnPoolingForward);
  CallSpec cs = spec("cudnnPoolingForward", "pool", 0, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("pool.x", x);
  return run_call(cs, [&] { return real(handle, poolingDesc, alpha, xDesc, x, beta, yDesc, y); });
}

CDMA_EXPORT cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                               const void* alpha, const cudnnTensorDescriptor_t yDesc, const void* y,
                                               const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                               const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                               const cudnnTensorDescriptor_t dxDesc, void* dx) {
  REAL(cudnnPoolingBackward);
  CallSpec cs = spec("cudnnPoolingBackward", "pool", 1, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("pool.x", x);
  return run_call(cs,
                  [&] { return real(handle, poolingDesc, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx); });
}

CDMA_EXPORT cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                              cudnnSoftmaxMode_t mode, const void* alpha,
                                              const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                              const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnSoftmaxForward);
  CallSpec cs = spec("cudnnSoftmaxForward", "softmax", 0, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("softmax.y", y);
  return run_call(cs, [&] { return real(handle, algo, mode, alpha, xDesc, x, beta, yDesc, y); });
}

CDMA_EXPORT cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                               cudnnSoftmaxMode_t mode, const void* alpha,
                                               const cudnnTensorDescriptor_t yDesc, const void* y,
                                               const cudnnTensorDescriptor_t dyDesc, const void* dy, const void* beta,
                                               const cudnnTensorDescriptor_t dxDesc, void* dx) {
  REAL(cudnnSoftmaxBackward);
  CallSpec cs = spec("cudnnSoftmaxBackward", "softmax", 1, handle);
  cs.add("y", y, yDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("softmax.y", y);
  return run_call(cs, [&] { return real(handle, algo, mode, alpha, yDesc, y, dyDesc, dy, beta, dxDesc, dx); });
}

// --- batch norm, LRN, dropout ---------------------------------------------------------------------

CDMA_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc, void* y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
    double exponentialAverageFactor, void* resultRunningMean, void* resultRunningVariance, double epsilon,
    void* resultSaveMean, void* resultSaveInvVariance) {
  REAL(cudnnBatchNormalizationForwardTraining);
  CallSpec cs = spec("cudnnBatchNormalizationForwardTraining", "bn", 0, handle);
  cs.weight = bnScale;
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("bn.x", x);
  cs.link("bn.scale", bnScale);
  return run_call(cs, [&] {
    return real(handle, mode, alpha, beta, xDesc, x, yDesc, y, bnScaleBiasMeanVarDesc, bnScale, bnBias,
                exponentialAverageFactor, resultRunningMean, resultRunningVariance, epsilon, resultSaveMean,
                resultSaveInvVariance);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTrainingEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* xData, const cudnnTensorDescriptor_t zDesc, const void* zData,
    const cudnnTensorDescriptor_t yDesc, void* yData, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc,
    const void* bnScale, const void* bnBias, double exponentialAverageFactor, void* resultRunningMean,
    void* resultRunningVariance, double epsilon, void* resultSaveMean, void* resultSaveInvVariance,
    cudnnActivationDescriptor_t activationDesc, void* workspace, size_t workSpaceSizeInBytes, void* reserveSpace,
    size_t reserveSpaceSizeInBytes) {
  REAL(cudnnBatchNormalizationForwardTrainingEx);
  CallSpec cs = spec("cudnnBatchNormalizationForwardTrainingEx", "bn", 0, handle);
  cs.weight = bnScale;
  cs.add("x", xData, xDesc, false);
  cs.add("y", yData, yDesc, true);
  cs.link("bn.x", xData);
  cs.link("bn.scale", bnScale);
  return run_call(cs, [&] {
    return real(handle, mode, bnOps, alpha, beta, xDesc, xData, zDesc, zData, yDesc, yData, bnScaleBiasMeanVarDesc,
                bnScale, bnBias, exponentialAverageFactor, resultRunningMean, resultRunningVariance, epsilon,
                resultSaveMean, resultSaveInvVariance, activationDesc, workspace, workSpaceSizeInBytes, reserveSpace,
                reserveSpaceSizeInBytes);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff, const void* betaDataDiff,
    const void* alphaParamDiff, const void* betaParamDiff, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnTensorDescriptor_t dyDesc, const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void* bnScale, void* dBnScaleResult, void* dBnBiasResult,
    double epsilon, const void* savedMean, const void* savedInvVariance) {
  REAL(cudnnBatchNormalizationBackward);
  CallSpec cs = spec("cudnnBatchNormalizationBackward", "bn", 1, handle);
  cs.add("x", x, xDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("bn.x", x);
  cs.link("bn.scale", bnScale);
  return run_call(cs, [&] {
    return real(handle, mode, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, x, dyDesc, dy, dxDesc,
                dx, dBnScaleBiasDesc, bnScale, dBnScaleResult, dBnBiasResult, epsilon, savedMean, savedInvVariance);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnBatchNormalizationBackwardEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t bnOps, const void* alphaDataDiff,
    const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void* xData, const cudnnTensorDescriptor_t yDesc, const void* yData,
    const cudnnTensorDescriptor_t dyDesc, const void* dyData, const cudnnTensorDescriptor_t dzDesc, void* dzData,
    const cudnnTensorDescriptor_t dxDesc, void* dxData, const cudnnTensorDescriptor_t dBnScaleBiasDesc,
    const void* bnScaleData, const void* bnBiasData, void* dBnScaleData, void* dBnBiasData, double epsilon,
    const void* savedMean, const void* savedInvVariance, cudnnActivationDescriptor_t activationDesc, void* workSpace,
    size_t workSpaceSizeInBytes, void* reserveSpace, size_t reserveSpaceSizeInBytes) {
  REAL(cudnnBatchNormalizationBackwardEx);
  CallSpec cs = spec("cudnnBatchNormalizationBackwardEx", "bn", 1, handle);
  cs.add("x", xData, xDesc, false);
  cs.add("dy", dyData, dyDesc, false);
  cs.add("dx", dxData, dxDesc, true);
  cs.link("bn.x", xData);
  cs.link("bn.scale", bnScaleData);
  return run_call(cs, [&] {
    return real(handle, mode, bnOps, alphaDataDiff, betaDataDiff, alphaParamDiff, betaParamDiff, xDesc, xData, yDesc,
                yData, dyDesc, dyData, dzDesc, dzData, dxDesc, dxData, dBnScaleBiasDesc, bnScaleData, bnBiasData,
                dBnScaleData, dBnBiasData, epsilon, savedMean, savedInvVariance, activationDesc, workSpace,
                workSpaceSizeInBytes, reserveSpace, reserveSpaceSizeInBytes);
  });
}

CDMA_EXPORT cudnnStatus_t cudnnLRNCrossChannelForward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc,
                                                      cudnnLRNMode_t lrnMode, const void* alpha,
                                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                                      const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  REAL(cudnnLRNCrossChannelForward);
  CallSpec cs = spec("cudnnLRNCrossChannelForward", "lrn", 0, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, true);
  cs.link("lrn.x", x);
  return run_call(cs, [&] { return real(handle, normDesc, lrnMode, alpha, xDesc, x, beta, yDesc, y); });
}

CDMA_EXPORT cudnnStatus_t cudnnLRNCrossChannelBackward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc,
                                                       cudnnLRNMode_t lrnMode, const void* alpha,
                                                       const cudnnTensorDescriptor_t yDesc, const void* y,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const cudnnTensorDescriptor_t xDesc, const void* x,
                                                       const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                                       void* dx) {
  REAL(cudnnLRNCrossChannelBackward);
  CallSpec cs = spec("cudnnLRNCrossChannelBackward", "lrn", 1, handle);
  cs.add("x", x, xDesc, false);
  cs.add("y", y, yDesc, false);
  cs.add("dy", dy, dyDesc, false);
  cs.add("dx", dx, dxDesc, true);
  cs.link("lrn.x", x);
  return run_call(
      cs, [&] { return real(handle, normDesc, lrnMode, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx); });
}

CDMA_EXPORT cudnnStatus_t cudnnDropoutForward(cudnnHandle_t handle, const cudnnDropoutDescriptor_t dropoutDesc,
                                              const cudnnTensorDescriptor_t xdesc, const void* x,
                                              const cudnnTensorDescriptor_t ydesc, void* y, void* reserveSpace,
                                              size_t reserveSpaceSizeInBytes) {
  REAL(cudnnDropoutForward);
  CallSpec cs = spec("cudnnDropoutForward", "dropout", 0, handle);
  cs.add("x", x, xdesc, false);
  cs.add("y", y, ydesc, true);
  cs.link("dropout.r", reserveSpace);
  return run_call(cs,
                  [&] { return real(handle, dropoutDesc, xdesc, x, ydesc, y, reserveSpace, reserveSpaceSizeInBytes); });
}

CDMA_EXPORT cudnnStatus_t cudnnDropoutBackward(cudnnHandle_t handle, const cudnnDropoutDescriptor_t dropoutDesc,
                                               const cudnnTensorDescriptor_t dydesc, const void* dy,
                                               const cudnnTensorDescriptor_t dxdesc, void* dx, void* reserveSpace,
                                               size_t reserveSpaceSizeInBytes) {
  REAL(cudnnDropoutBackward);
  CallSpec cs = spec("cudnnDropoutBackward", "dropout", 1, handle);
  cs.add("dy", dy, dydesc, false);
  cs.add("dx", dx, dxdesc, true);
  cs.link("dropout.r", reserveSpace);
  return run_call(
      cs, [&] { return real(handle, dropoutDesc, dydesc, dy, dxdesc, dx, reserveSpace, reserveSpaceSizeInBytes); });
}

// --- element-wise -------------------------------------------------------------------------------------

CDMA_EXPORT cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                                         const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc,
                                         void* C) {
  REAL(cudnnAddTensor);
  // C += A in place: the input X is C as it was before the call.
  CallSpec cs = spec("cudnnAddTensor", "add", 0, handle);
  cs.add("x", C, cDesc, false);
  cs.add("y", C, cDesc, true);
  cs.link("add.c", C);
  return run_call(cs, [&] { return real(handle, alpha, aDesc, A, beta, cDesc, C); });
}

CDMA_EXPORT cudnnStatus_t cudnnOpTensor(cudnnHandle_t handle, const cudnnOpTensorDescriptor_t opTensorDesc,
                                        const void* alpha1, const cudnnTensorDescriptor_t aDesc, const void* A,
                                        const void* alpha2, const cudnnTensorDescriptor_t bDesc, const void* B,
                                        const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  REAL(cudnnOpTensor);
  CallSpec cs = spec("cudnnOpTensor", optensor_op(opTensorDesc), 0, handle);
  cs.add("x", A, aDesc, false);
  cs.add("y", C, cDesc, true);
  cs.link("add.c", C);
  return run_call(cs, [&] { return real(handle, opTensorDesc, alpha1, aDesc, A, alpha2, bDesc, B, beta, cDesc, C); });
}
