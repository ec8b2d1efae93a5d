// Fused row kernels of portable-softmax for CuPy (cupy.RawModule, NVRTC) and nvcc.
//
// Every kernel works on rows of a C-contiguous array along its last axis, in one of three
// variants chosen on the host (_launch.py):
//   *_warp   one warp per row, the row cached in shared memory (short rows);
//   *_block  one block per row, the row cached in shared memory (rows up to ~16K);
//   *_online one block per row, a streaming (max, sum) pass and a second read (long rows).
// Storage type T is float, double, __half or __nv_bfloat16; arithmetic is in Acc<T>
// (float for the 16-bit types). Per-thread sums are compensated (Neumaier) and threads are
// combined in a shuffle tree, so the error grows like log2(n), not n (SPEC section 3).
//
// The edges of SPEC section 2 come out of the arithmetic, with no branch on the host:
// the shift (x - m)/T is exactly 0 where x == m, so k entries of +inf give exp(0) = 1 each
// and the slice 1/k; a slice with no finite entry is shifted by 0, sums to 0, and gives
// 0 / -inf; a NaN propagates through the NaN-aware max into every output of its slice.
// Only this file and the headers NVRTC ships are included: no host or standard headers.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace ps {

template <typename T> struct Acc { typedef float type; };
template <> struct Acc<double> { typedef double type; };

// Elements per 16-byte vector of T.
template <typename T> struct Vec { static const int width = 16 / sizeof(T); };

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

// Round to nearest, keeping subnormals (a float16 row of 70,000 equal entries stays nonzero).
template <typename T> __device__ __forceinline__ T from_acc(typename Acc<T>::type v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) {
  return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }
__device__ __forceinline__ float abs_(float v) { return fabsf(v); }
__device__ __forceinline__ double abs_(double v) { return fabs(v); }

template <typename A> __device__ __forceinline__ A inf();
template <> __device__ __forceinline__ float inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}
template <typename A> __device__ __forceinline__ A nan();
template <> __device__ __forceinline__ float nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double nan<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}

// max that propagates NaN from either side (fmax would drop it).
template <typename A> __device__ __forceinline__ A nan_max(A a, A b) {
  return (a > b || a != a) ? a : b;
}

// (x - m)/T, exactly 0 where x == m. For T > 1 the halves x/2 - m/2 over T/2 cannot
// overflow where (x - m)/T is finite; `half` is 0.5 then, else 1 (exact scalings). T == 1
// (uniform across the launch) skips the division.
template <typename A> __device__ __forceinline__ A shifted(A x, A m, A t, A half) {
  if (x == m) return A(0);
  return t == A(1) ? x - m : (x * half - m * half) / (t * half);
}

// Neumaier's compensated sum; an infinite running sum is returned as is (its compensation
// would be inf - inf).
template <typename A> struct Sum {
  A s, c;
  __device__ __forceinline__ Sum() : s(0), c(0) {}
  __device__ __forceinline__ void add(A v) {
    const A t = s + v;
    c += abs_(s) >= abs_(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  __device__ __forceinline__ void scale(A f) {
    s *= f;
    c *= f;
  }
  __device__ __forceinline__ A value() const { return abs_(s) == inf<A>() ? s : s + c; }
};

const unsigned FULL_MASK = 0xffffffffu;

template <typename A> __device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}
template <typename A> __device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(FULL_MASK, v, o));
  return v;
}

// Block-wide reductions (blockDim.x a multiple of 32): warps reduce, lane 0 of each writes
// to scratch, and every warp reduces scratch again, so every thread gets the result.
template <typename A> __device__ __forceinline__ A block_sum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by the previous reduction
  if (lane == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  return warp_sum(lane < warps ? scratch[lane] : A(0));
}
template <typename A> __device__ __forceinline__ A block_max(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  return warp_max(lane < warps ? scratch[lane] : -inf<A>());
}

// Who works on which row: a warp (WARP) or the whole block.
template <bool WARP> struct Group {
  static __device__ __forceinline__ int rank() { return WARP ? (threadIdx.x & 31) : threadIdx.x; }
  static __device__ __forceinline__ int size() { return WARP ? 32 : blockDim.x; }
  static __device__ __forceinline__ int slot() { return WARP ? (threadIdx.x >> 5) : 0; }
  static __device__ __forceinline__ long long first_row() {
    return WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
  }
  static __device__ __forceinline__ long long row_step() {
    return WARP ? (long long)gridDim.x * (blockDim.x >> 5) : gridDim.x;
  }
  template <typename A> static __device__ __forceinline__ A sum(A v, A* scratch) {
    if (WARP) return warp_sum(v);
    return block_sum(v, scratch);
  }
  template <typename A> static __device__ __forceinline__ A max(A v, A* scratch) {
    if (WARP) return warp_max(v);
    return block_max(v, scratch);
  }
};

// One chunk: a 16-byte vector of W elements where the rows allow it (vec), else one element.
// Every pass of a kernel walks the same chunks with the same threads, so a thread only reads
// back the cache entries it wrote itself.
template <typename T>
__device__ __forceinline__ void load_chunk(const T* row, int j, int vec,
                                           typename Acc<T>::type (&v)[Vec<T>::width]) {
  if (vec) {
    const uint4 raw = reinterpret_cast<const uint4*>(row)[j];
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int k = 0; k < Vec<T>::width; ++k) v[k] = to_acc(e[k]);
  } else {
    v[0] = to_acc(row[j]);
  }
}

template <typename T>
__device__ __forceinline__ void store_chunk(T* row, int j, int vec,
                                            const typename Acc<T>::type (&v)[Vec<T>::width]) {
  if (vec) {
    uint4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < Vec<T>::width; ++k) e[k] = from_acc<T>(v[k]);
    reinterpret_cast<uint4*>(row)[j] = raw;
  } else {
    row[j] = from_acc<T>(v[0]);
  }
}

// Dynamic shared memory, declared once for every instantiation (its type cannot vary).
// PS_HOST_EMULATION: conformance/cuda_emulation runs these kernels as host threads.
#ifndef PS_HOST_EMULATION
extern __shared__ __align__(16) unsigned char smem[];
#else
static unsigned char* const smem = ::emu::dynamic_smem;
#endif

// Walk the chunks a thread owns (the same ones in every pass) and their elements:
// `i` is the element's index in the row. Used inside the per-row loops below.
#define PS_CHUNKS(G) for (int j = G::rank(); j < chunks; j += G::size())
#define PS_ELEMENTS                   \
  _Pragma("unroll") for (int k = 0; k < Vec<T>::width; ++k) if (k < w)

// ---------------------------------------------------------------- softmax, log_softmax, lse

enum { SOFTMAX = 0, LOG_SOFTMAX = 1, LOGSUMEXP = 2 };

// The row held on chip: one read of x, one write of y (logsumexp: one value per row).
template <typename T, int OP, bool WARP>
__device__ __forceinline__ void forward_on_chip(const T* __restrict__ x, T* __restrict__ y,
                                                long long rows, int n,
                                                typename Acc<T>::type t, int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<WARP> G;
  __shared__ A scratch[32];
  A* cache = reinterpret_cast<A*>(smem) + (long long)G::slot() * n;
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  const A half = t > A(1) ? A(0.5) : A(1);
  for (long long row = G::first_row(); row < rows; row += G::row_step()) {
    const T* xr = x + row * n;
    A m = -inf<A>();
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        cache[j * w + k] = v[k];
        m = nan_max(m, v[k]);
      }
    }
    m = G::max(m, scratch);
    const A base = m == -inf<A>() ? A(0) : m;  // nothing finite: shift by 0, sum to 0
    Sum<A> s;
    PS_CHUNKS(G) {
      PS_ELEMENTS {
        const int i = j * w + k;
        const A d = shifted(cache[i], base, t, half);
        const A e = exp_(d);
        cache[i] = OP == LOG_SOFTMAX ? d : e;
        s.add(e);
      }
    }
    const A total = G::sum(s.value(), scratch);
    if (OP == LOGSUMEXP) {
      if (G::rank() == 0) y[row] = from_acc<T>(base + (total != A(0) ? log_(total) : -inf<A>()));
      continue;
    }
    const A nonzero = total == A(0) ? A(1) : total;
    const A factor = OP == SOFTMAX ? A(1) / nonzero : log_(nonzero);
    T* yr = y + row * n;
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      PS_ELEMENTS {
        const A c = cache[j * w + k];
        v[k] = OP == SOFTMAX ? c * factor : c - factor;
      }
      store_chunk(yr, j, vec, v);
    }
  }
}

// Rows too long for the chip: a streaming (max, sum) pass, then a second read of x.
template <typename T, int OP>
__device__ __forceinline__ void forward_online(const T* __restrict__ x, T* __restrict__ y,
                                               long long rows, int n, typename Acc<T>::type t,
                                               int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<false> G;
  __shared__ A scratch[32];
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  const A half = t > A(1) ? A(0.5) : A(1);
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    A m = -inf<A>();
    Sum<A> s;  // of exp((x - m)/T) over this thread's entries, rescaled as m grows
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        const A grown = nan_max(m, v[k]);
        if (grown != m) {
          s.scale(exp_(shifted(m, grown, t, half)));
          m = grown;
        }
        s.add(exp_(shifted(v[k], m, t, half)));
      }
    }
    const A top = block_max(m, scratch);
    // A thread whose entries are all -inf counted each as exp(0); its factor is 0 unless
    // the whole row is -inf, which the next lines settle.
    A total = block_sum(s.value() * exp_(shifted(m, top, t, half)), scratch);
    const A base = top == -inf<A>() ? A(0) : top;
    if (top == -inf<A>()) total = A(0);
    if (OP == LOGSUMEXP) {
      if (threadIdx.x == 0)
        y[row] = from_acc<T>(base + (total != A(0) ? log_(total) : -inf<A>()));
      continue;
    }
    const A nonzero = total == A(0) ? A(1) : total;
    const A factor = OP == SOFTMAX ? A(1) / nonzero : log_(nonzero);
    T* yr = y + row * n;
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        const A d = shifted(v[k], base, t, half);
        v[k] = OP == SOFTMAX ? exp_(d) * factor : d - factor;
      }
      store_chunk(yr, j, vec, v);
    }
  }
}

// ---------------------------------------------------------------- backward passes and JVPs

enum { SOFTMAX_PRODUCT = 0, LOG_SOFTMAX_VJP = 1, LOG_SOFTMAX_JVP = 2 };

// From the forward output p (y or logp) and the vector v (grad or tangent): the pair (a, b)
// the output needs and the summand, as the generic path writes them:
//   softmax VJP = JVP   y * v - y * sum(y * v)
//   log_softmax VJP     g - exp(logp) * sum(g)
//   log_softmax JVP     t - sum(exp(logp) * t)
template <int OP, typename A>
__device__ __forceinline__ void product_terms(A p, A v, A& a, A& b, A& term) {
  if (OP == SOFTMAX_PRODUCT) {
    a = p;
    b = v * p;
    term = b;
  } else if (OP == LOG_SOFTMAX_VJP) {
    a = exp_(p);
    b = v;
    term = v;
  } else {
    a = exp_(p) * v;
    b = v;
    term = a;
  }
}

template <int OP, typename A> __device__ __forceinline__ A product_out(A a, A b, A total, A t) {
  const A out = OP == LOG_SOFTMAX_JVP ? b - total : b - a * total;
  return t == A(1) ? out : out / t;
}

template <typename T, int OP, bool WARP>
__device__ __forceinline__ void derivative_on_chip(const T* __restrict__ p,
                                                   const T* __restrict__ vin,
                                                   T* __restrict__ out, long long rows, int n,
                                                   typename Acc<T>::type t, int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<WARP> G;
  __shared__ A scratch[32];
  A* ca = reinterpret_cast<A*>(smem) + (long long)G::slot() * 2 * n;
  A* cb = ca + n;
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  for (long long row = G::first_row(); row < rows; row += G::row_step()) {
    const long long offset = row * n;
    Sum<A> s;
    PS_CHUNKS(G) {
      A pv[Vec<T>::width] = {}, vv[Vec<T>::width] = {};
      load_chunk(p + offset, j, vec, pv);
      load_chunk(vin + offset, j, vec, vv);
      PS_ELEMENTS {
        A term;
        product_terms<OP>(pv[k], vv[k], ca[j * w + k], cb[j * w + k], term);
        s.add(term);
      }
    }
    const A total = G::sum(s.value(), scratch);
    PS_CHUNKS(G) {
      A o[Vec<T>::width] = {};
      PS_ELEMENTS { o[k] = product_out<OP>(ca[j * w + k], cb[j * w + k], total, t); }
      store_chunk(out + offset, j, vec, o);
    }
  }
}

template <typename T, int OP>
__device__ __forceinline__ void derivative_online(const T* __restrict__ p,
                                                  const T* __restrict__ vin,
                                                  T* __restrict__ out, long long rows, int n,
                                                  typename Acc<T>::type t, int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<false> G;
  __shared__ A scratch[32];
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const long long offset = row * n;
    Sum<A> s;
    PS_CHUNKS(G) {
      A pv[Vec<T>::width] = {}, vv[Vec<T>::width] = {};
      load_chunk(p + offset, j, vec, pv);
      load_chunk(vin + offset, j, vec, vv);
      PS_ELEMENTS {
        A a, b, term;
        product_terms<OP>(pv[k], vv[k], a, b, term);
        s.add(term);
      }
    }
    const A total = block_sum(s.value(), scratch);
    PS_CHUNKS(G) {
      A pv[Vec<T>::width] = {}, vv[Vec<T>::width] = {};
      load_chunk(p + offset, j, vec, pv);
      load_chunk(vin + offset, j, vec, vv);
      PS_ELEMENTS {
        A a, b, term;
        product_terms<OP>(pv[k], vv[k], a, b, term);
        pv[k] = product_out<OP>(a, b, total, t);
      }
      store_chunk(out + offset, j, vec, pv);
    }
  }
}

// ---------------------------------------------------------------- cross-entropy

enum { XENT_LOSS = 0, XENT_GRADIENT = 1 };

// The options of one call (integer labels along the last axis), shared by every row.
template <typename A> struct Xent {
  const long long* labels;
  const A* weight;  // (C,) in the accumulation type; read only when weighted
  int weighted, has_ignore;
  long long ignore_index;
  A keep, share;  // smoothed target: keep * onehot + share, keep = 1 - eps, share = eps / C

  __device__ __forceinline__ A target(int c, long long label) const {
    const A t = keep * (c == label ? A(1) : A(0)) + share;
    return weighted ? weight[c] * t : t;
  }
};

// Per-row outcome of the label: ignored samples give 0, invalid ones (outside [0, C)) NaN.
template <typename A>
__device__ __forceinline__ A mark(A value, bool ignored, bool found) {
  return ignored ? A(0) : (found ? value : nan<A>());
}

// Loss per row (0 log 0 = 0) or the fused gradient (p * sum(w t') - w t') * scale, with
// the row on chip: one read of the logits, one write of the gradient.
template <typename T, int KIND, bool WARP>
__device__ __forceinline__ void xent_on_chip(const T* __restrict__ x, Xent<typename Acc<T>::type> o,
                                             const typename Acc<T>::type* __restrict__ scale,
                                             long long scale_step, T* __restrict__ grad,
                                             typename Acc<T>::type* __restrict__ loss,
                                             long long rows, int n, int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<WARP> G;
  __shared__ A scratch[32];
  A* cache = reinterpret_cast<A*>(smem) + (long long)G::slot() * n;
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  const A one = A(1);
  for (long long row = G::first_row(); row < rows; row += G::row_step()) {
    const T* xr = x + row * n;
    const long long label = o.labels[row];
    const bool found = label >= 0 && label < n;
    const bool ignored = o.has_ignore && label == o.ignore_index;
    A m = -inf<A>();
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        cache[j * w + k] = v[k];
        m = nan_max(m, v[k]);
      }
    }
    m = G::max(m, scratch);
    const A base = m == -inf<A>() ? A(0) : m;
    Sum<A> s, mass;  // sum of exp; sum of w t' (only with smoothing: else it is w[label])
    PS_CHUNKS(G) {
      PS_ELEMENTS {
        const int i = j * w + k;
        const A d = shifted(cache[i], base, one, one);
        const A e = exp_(d);
        cache[i] = KIND == XENT_LOSS ? d : e;
        s.add(e);
        if (KIND == XENT_GRADIENT && o.share != A(0)) mass.add(o.target(i, label));
      }
    }
    const A total = G::sum(s.value(), scratch);
    const A nonzero = total == A(0) ? A(1) : total;
    if (KIND == XENT_LOSS) {
      const A lse = log_(nonzero);
      A value = A(0);
      if (o.share == A(0)) {  // only the labelled class has a target
        if (found) {
          const A wt = o.target((int)label, label);
          const A d = shifted(to_acc(xr[label]), base, one, one);
          value = wt == A(0) ? A(0) : -(wt * (d - lse));
        }
      } else {
        Sum<A> l;
        PS_CHUNKS(G) {
          PS_ELEMENTS {
            const int i = j * w + k;
            const A wt = o.target(i, label);
            if (wt != A(0)) l.add(wt * (cache[i] - lse));
          }
        }
        value = -G::sum(l.value(), scratch);
      }
      if (G::rank() == 0) loss[row] = mark(value, ignored, found);
      continue;
    }
    A weight_mass;
    if (o.share == A(0)) {
      weight_mass = found ? o.target((int)label, label) : A(0);
    } else {
      weight_mass = G::sum(mass.value(), scratch);
    }
    const A inv = A(1) / nonzero, sc = scale[row * scale_step];
    T* gr = grad + row * n;
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      PS_ELEMENTS {
        const int i = j * w + k;
        v[k] = mark((cache[i] * inv * weight_mass - o.target(i, label)) * sc, ignored, found);
      }
      store_chunk(gr, j, vec, v);
    }
  }
}

template <typename T, int KIND>
__device__ __forceinline__ void xent_online(const T* __restrict__ x, Xent<typename Acc<T>::type> o,
                                            const typename Acc<T>::type* __restrict__ scale,
                                            long long scale_step, T* __restrict__ grad,
                                            typename Acc<T>::type* __restrict__ loss,
                                            long long rows, int n, int vec) {
  typedef typename Acc<T>::type A;
  typedef Group<false> G;
  __shared__ A scratch[32];
  const int w = vec ? Vec<T>::width : 1, chunks = n / w;
  const A one = A(1);
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    const long long label = o.labels[row];
    const bool found = label >= 0 && label < n;
    const bool ignored = o.has_ignore && label == o.ignore_index;
    A m = -inf<A>();
    Sum<A> s, mass;
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        const A grown = nan_max(m, v[k]);
        if (grown != m) {
          s.scale(exp_(shifted(m, grown, one, one)));
          m = grown;
        }
        s.add(exp_(shifted(v[k], m, one, one)));
        if (KIND == XENT_GRADIENT && o.share != A(0)) mass.add(o.target(j * w + k, label));
      }
    }
    const A top = block_max(m, scratch);
    A total = block_sum(s.value() * exp_(shifted(m, top, one, one)), scratch);
    const A base = top == -inf<A>() ? A(0) : top;
    if (top == -inf<A>()) total = A(0);
    const A nonzero = total == A(0) ? A(1) : total;
    if (KIND == XENT_LOSS) {
      const A lse = log_(nonzero);
      A value = A(0);
      if (o.share == A(0)) {
        if (found) {
          const A wt = o.target((int)label, label);
          const A d = shifted(to_acc(xr[label]), base, one, one);
          value = wt == A(0) ? A(0) : -(wt * (d - lse));
        }
      } else {
        Sum<A> l;
        PS_CHUNKS(G) {
          A v[Vec<T>::width] = {};
          load_chunk(xr, j, vec, v);
          PS_ELEMENTS {
            const A wt = o.target(j * w + k, label);
            if (wt != A(0)) l.add(wt * (shifted(v[k], base, one, one) - lse));
          }
        }
        value = -block_sum(l.value(), scratch);
      }
      if (threadIdx.x == 0) loss[row] = mark(value, ignored, found);
      continue;
    }
    A weight_mass;
    if (o.share == A(0)) {
      weight_mass = found ? o.target((int)label, label) : A(0);
    } else {
      weight_mass = block_sum(mass.value(), scratch);
    }
    const A inv = A(1) / nonzero, sc = scale[row * scale_step];
    T* gr = grad + row * n;
    PS_CHUNKS(G) {
      A v[Vec<T>::width] = {};
      load_chunk(xr, j, vec, v);
      PS_ELEMENTS {
        const A p = exp_(shifted(v[k], base, one, one)) * inv;
        v[k] = mark((p * weight_mass - o.target(j * w + k, label)) * sc, ignored, found);
      }
      store_chunk(gr, j, vec, v);
    }
  }
}

}  // namespace ps

// ---------------------------------------------------------------- entry points
// Instantiated by name (name_expressions / _launch.py's list), e.g. ps_forward_warp<float, 0>.
// The launch bounds leave 128 registers a thread (block and online variants, up to 512
// threads) and 255 (warp variants, up to 8 warps), so that nothing spills: _launch.py keeps
// MAX_BLOCK and WARP_BLOCK equal to these.
#define PS_MAX_BLOCK 512
#define PS_WARP_BLOCK 256

#define PS_FORWARD_ARGS                                                                     \
  const T *__restrict__ x, T *__restrict__ y, long long rows, int n, typename ps::Acc<T>::type t, \
      int vec

template <typename T, int OP>
__global__ void __launch_bounds__(PS_WARP_BLOCK) ps_forward_warp(PS_FORWARD_ARGS) {
  ps::forward_on_chip<T, OP, true>(x, y, rows, n, t, vec);
}
template <typename T, int OP>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_forward_block(PS_FORWARD_ARGS) {
  ps::forward_on_chip<T, OP, false>(x, y, rows, n, t, vec);
}
template <typename T, int OP>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_forward_online(PS_FORWARD_ARGS) {
  ps::forward_online<T, OP>(x, y, rows, n, t, vec);
}

#define PS_DERIVATIVE_ARGS                                                             \
  const T *__restrict__ p, const T *__restrict__ v, T *__restrict__ out, long long rows, int n, \
      typename ps::Acc<T>::type t, int vec

template <typename T, int OP>
__global__ void __launch_bounds__(PS_WARP_BLOCK) ps_derivative_warp(PS_DERIVATIVE_ARGS) {
  ps::derivative_on_chip<T, OP, true>(p, v, out, rows, n, t, vec);
}
template <typename T, int OP>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_derivative_block(PS_DERIVATIVE_ARGS) {
  ps::derivative_on_chip<T, OP, false>(p, v, out, rows, n, t, vec);
}
template <typename T, int OP>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_derivative_online(PS_DERIVATIVE_ARGS) {
  ps::derivative_online<T, OP>(p, v, out, rows, n, t, vec);
}

// Loss kernels write `loss` (one accumulation-type value per row) and ignore scale and grad;
// gradient kernels write `grad` and ignore loss. scale[row * scale_step]: the incoming
// gradient over D for "mean" (step 0), or per sample for "none" (step 1).
#define PS_XENT_ARGS                                                                          \
  const T *__restrict__ x, const long long *__restrict__ labels,                              \
      const typename ps::Acc<T>::type *__restrict__ weight, int weighted, int has_ignore,      \
      long long ignore_index, typename ps::Acc<T>::type keep, typename ps::Acc<T>::type share, \
      const typename ps::Acc<T>::type *__restrict__ scale, long long scale_step,               \
      T *__restrict__ grad, typename ps::Acc<T>::type *__restrict__ loss, long long rows, int n, \
      int vec
#define PS_XENT_OPTIONS \
  ps::Xent<typename ps::Acc<T>::type> { labels, weight, weighted, has_ignore, ignore_index, keep, share }

template <typename T, int KIND>
__global__ void __launch_bounds__(PS_WARP_BLOCK) ps_xent_warp(PS_XENT_ARGS) {
  ps::xent_on_chip<T, KIND, true>(x, PS_XENT_OPTIONS, scale, scale_step, grad, loss, rows, n, vec);
}
template <typename T, int KIND>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_xent_block(PS_XENT_ARGS) {
  ps::xent_on_chip<T, KIND, false>(x, PS_XENT_OPTIONS, scale, scale_step, grad, loss, rows, n,
                                   vec);
}
template <typename T, int KIND>
__global__ void __launch_bounds__(PS_MAX_BLOCK) ps_xent_online(PS_XENT_ARGS) {
  ps::xent_online<T, KIND>(x, PS_XENT_OPTIONS, scale, scale_step, grad, loss, rows, n, vec);
}

// d_n = w[label] for samples that count in the mean's denominator (not ignored, label in
// [0, C)), else 0; one thread per sample. T only selects the accumulation type.
template <typename T>
__global__ void __launch_bounds__(PS_MAX_BLOCK)
    ps_xent_denominator(const long long* __restrict__ labels,
                        const typename ps::Acc<T>::type* __restrict__ weight, int weighted,
                        int has_ignore, long long ignore_index,
                        typename ps::Acc<T>::type* __restrict__ out, long long rows, int n) {
  typedef typename ps::Acc<T>::type A;
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < rows; i += step) {
    const long long label = labels[i];
    const bool counts = !(has_ignore && label == ignore_index) && label >= 0 && label < n;
    out[i] = counts ? (weighted ? weight[label] : A(1)) : A(0);
  }
}
