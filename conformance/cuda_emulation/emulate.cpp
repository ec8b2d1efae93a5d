// Runs the CUDA kernels of portable_softmax/_backends/cupy/kernels.cu on the CPU, as host
// threads: one std::thread per CUDA thread, blocks one after another, __syncthreads and
// warp shuffles through std::barrier, shared memory as plain static memory. Slow, and no
// substitute for a GPU (no real concurrency model, no memory model, host libm's expf), but
// it runs the kernels' own indexing, reductions, vector loads and edge handling, so their
// logic is checked without a GPU. Built and driven by conformance/test_cupy_emulated.py:
//   g++ -std=c++20 -O1 -shared -fPIC -I<cuda>/include -I<kernels dir> emulate.cpp
// Host code only; CUDA's fp16/bf16 headers compile for the host.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include <barrier>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct EmuDim {
  unsigned x, y, z;
};

namespace emu {
inline thread_local EmuDim tid{0, 0, 0}, bid{0, 0, 0};
inline EmuDim bdim{1, 1, 1}, gdim{1, 1, 1};
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline double exchange[1024];
alignas(16) inline unsigned char dynamic_smem[1 << 20];
}  // namespace emu

#undef __global__
#define __global__
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)
#define threadIdx emu::tid
#define blockIdx emu::bid
#define blockDim emu::bdim
#define gridDim emu::gdim
#define PS_HOST_EMULATION 1

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
inline void __syncwarp() { emu::warp_barriers[emu::tid.x / 32]->arrive_and_wait(); }
template <typename T> T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  const unsigned t = emu::tid.x;
  emu::exchange[t] = static_cast<double>(v);  // float and double round-trip exactly
  __syncwarp();
  const T other = static_cast<T>(emu::exchange[(t & ~31u) | ((t & 31u) ^ lane_mask)]);
  __syncwarp();
  return other;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline double __longlong_as_double(long long i) {
  double d;
  std::memcpy(&d, &i, sizeof d);
  return d;
}

#include "kernels.cu"

template <typename F> static void launch(unsigned grid, unsigned block, F body) {
  emu::bdim = {block, 1, 1};
  emu::gdim = {grid, 1, 1};
  for (unsigned b = 0; b < grid; ++b) {
    std::barrier<> barrier(block);
    emu::block_barrier = &barrier;
    emu::warp_barriers.clear();
    for (unsigned w = 0; w < (block + 31) / 32; ++w)
      emu::warp_barriers.emplace_back(new std::barrier<>(32));
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < block; ++t)
      threads.emplace_back([=] {
        emu::tid = {t, 0, 0};
        emu::bid = {b, 0, 0};
        body();
      });
    for (auto& thread : threads) thread.join();
  }
}

template <typename T> using AccT = typename ps::Acc<T>::type;

template <typename T, int OP>
static void forward(int variant, const void* x, void* y, long long rows, int n, double t,
                    int vec, unsigned g, unsigned b) {
  const T* X = static_cast<const T*>(x);
  T* Y = static_cast<T*>(y);
  const AccT<T> tt = static_cast<AccT<T>>(t);
  if (variant == 0) launch(g, b, [=] { ps_forward_warp<T, OP>(X, Y, rows, n, tt, vec); });
  if (variant == 1) launch(g, b, [=] { ps_forward_block<T, OP>(X, Y, rows, n, tt, vec); });
  if (variant == 2) launch(g, b, [=] { ps_forward_online<T, OP>(X, Y, rows, n, tt, vec); });
}

template <typename T, int OP>
static void derivative(int variant, const void* p, const void* v, void* out, long long rows,
                       int n, double t, int vec, unsigned g, unsigned b) {
  const T* P = static_cast<const T*>(p);
  const T* V = static_cast<const T*>(v);
  T* O = static_cast<T*>(out);
  const AccT<T> tt = static_cast<AccT<T>>(t);
  if (variant == 0) launch(g, b, [=] { ps_derivative_warp<T, OP>(P, V, O, rows, n, tt, vec); });
  if (variant == 1) launch(g, b, [=] { ps_derivative_block<T, OP>(P, V, O, rows, n, tt, vec); });
  if (variant == 2) launch(g, b, [=] { ps_derivative_online<T, OP>(P, V, O, rows, n, tt, vec); });
}

template <typename T, int KIND>
static void xent(int variant, const void* x, const long long* labels, const void* weight,
                 int weighted, int has_ignore, long long ignore, double keep, double share,
                 const void* scale, long long step, void* grad, void* loss, long long rows, int n,
                 int vec, unsigned g, unsigned b) {
  typedef AccT<T> A;
  const T* X = static_cast<const T*>(x);
  const A* W = static_cast<const A*>(weight);
  const A* S = static_cast<const A*>(scale);
  T* G = static_cast<T*>(grad);
  A* L = static_cast<A*>(loss);
  const A k = static_cast<A>(keep), s = static_cast<A>(share);
#define PS_EMU_XENT_ARGS X, labels, W, weighted, has_ignore, ignore, k, s, S, step, G, L, rows, n, vec
  if (variant == 0) launch(g, b, [=] { ps_xent_warp<T, KIND>(PS_EMU_XENT_ARGS); });
  if (variant == 1) launch(g, b, [=] { ps_xent_block<T, KIND>(PS_EMU_XENT_ARGS); });
  if (variant == 2) launch(g, b, [=] { ps_xent_online<T, KIND>(PS_EMU_XENT_ARGS); });
#undef PS_EMU_XENT_ARGS
}

// dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16 (16-bit types as their bits).
#define PS_EMU_DISPATCH(...)                                \
  switch (dtype) {                                          \
    case 0: { typedef float T; __VA_ARGS__; } break;         \
    case 1: { typedef double T; __VA_ARGS__; } break;        \
    case 2: { typedef __half T; __VA_ARGS__; } break;        \
    case 3: { typedef __nv_bfloat16 T; __VA_ARGS__; } break; \
  }

extern "C" void ps_emu_forward(int dtype, int op, int variant, const void* x, void* y,
                               long long rows, int n, double t, int vec, unsigned g,
                               unsigned b) {
  PS_EMU_DISPATCH(if (op == 0) forward<T, 0>(variant, x, y, rows, n, t, vec, g, b);
                  if (op == 1) forward<T, 1>(variant, x, y, rows, n, t, vec, g, b);
                  if (op == 2) forward<T, 2>(variant, x, y, rows, n, t, vec, g, b));
}

extern "C" void ps_emu_derivative(int dtype, int op, int variant, const void* p, const void* v,
                                  void* out, long long rows, int n, double t, int vec,
                                  unsigned g, unsigned b) {
  PS_EMU_DISPATCH(if (op == 0) derivative<T, 0>(variant, p, v, out, rows, n, t, vec, g, b);
                  if (op == 1) derivative<T, 1>(variant, p, v, out, rows, n, t, vec, g, b);
                  if (op == 2) derivative<T, 2>(variant, p, v, out, rows, n, t, vec, g, b));
}

extern "C" void ps_emu_xent(int dtype, int kind, int variant, const void* x,
                            const long long* labels, const void* weight, int weighted,
                            int has_ignore, long long ignore, double keep, double share,
                            const void* scale, long long step, void* grad, void* loss,
                            long long rows, int n, int vec, unsigned g, unsigned b) {
  PS_EMU_DISPATCH(
      if (kind == 0) xent<T, 0>(variant, x, labels, weight, weighted, has_ignore, ignore, keep,
                                share, scale, step, grad, loss, rows, n, vec, g, b);
      if (kind == 1) xent<T, 1>(variant, x, labels, weight, weighted, has_ignore, ignore, keep,
                                share, scale, step, grad, loss, rows, n, vec, g, b));
}

extern "C" void ps_emu_denominator(int dtype, const long long* labels, const void* weight,
                                   int weighted, int has_ignore, long long ignore, void* out,
                                   long long rows, int n, unsigned g, unsigned b) {
  PS_EMU_DISPATCH(launch(g, b, [=] {
    ps_xent_denominator<T>(labels, static_cast<const AccT<T>*>(weight), weighted, has_ignore,
                           ignore, static_cast<AccT<T>*>(out), rows, n);
  }));
}
