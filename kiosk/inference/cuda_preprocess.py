"""The face detector's preprocessing as a CUDA kernel: a bgr8 camera image on the GPU -> the network's input.

Where the camera gives a CUDA image (jetson-utils ``cudaImage``, bgr8, in mapped memory), the detector's
input is made on the GPU, straight into the engine's input buffer: resized to the detector's size as the CPU
path does it (``cv2.resize``: INTER_AREA when shrinking, INTER_LINEAR when enlarging), rounded to whole levels
as the CPU path's uint8 image is, laid out as CHW float32 0..255 in BGR order (YuNet's own input; no mean or
scale), zero-padded to the network's multiple of 32. :func:`reference` is the kernel's arithmetic in numpy,
line for line, so that it is checked against the CPU path on any machine (``tests/test_gpu_path.py``); the
kernel itself runs only on a GPU (``dabai-kiosk bench device``).

Compiled once per process with NVRTC through cuda-python (``cuda.bindings.nvrtc`` / ``cuda.nvrtc``), else with
pycuda's ``SourceModule`` (which needs nvcc, part of JetPack's CUDA toolkit).
"""

from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np

KERNEL_NAME = "bgr8_to_chw_f32"
BLOCK = (16, 16, 1)

SOURCE = r"""
extern "C" __global__ void bgr8_to_chw_f32(const unsigned char* src, int sw, int sh, int spitch,
                                           float* dst, int rw, int rh, int pw, int ph, int area)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= pw || y >= ph) return;
    float v[3] = {0.f, 0.f, 0.f};
    if (x < rw && y < rh) {
        float fx = (float)sw / (float)rw, fy = (float)sh / (float)rh;
        if (area) {  /* the mean over the source rectangle the output pixel covers (cv2 INTER_AREA) */
            float x0 = x * fx, x1 = x0 + fx, y0 = y * fy, y1 = y0 + fy;
            int ix0 = (int)floorf(x0), ix1 = min((int)ceilf(x1), sw);
            int iy0 = (int)floorf(y0), iy1 = min((int)ceilf(y1), sh);
            for (int sy = iy0; sy < iy1; ++sy) {
                float wy = fminf(y1, sy + 1.f) - fmaxf(y0, (float)sy);
                const unsigned char* row = src + (size_t)sy * spitch;
                for (int sx = ix0; sx < ix1; ++sx) {
                    float w = wy * (fminf(x1, sx + 1.f) - fmaxf(x0, (float)sx));
                    v[0] += w * row[sx * 3]; v[1] += w * row[sx * 3 + 1]; v[2] += w * row[sx * 3 + 2];
                }
            }
            float inv = 1.f / (fx * fy);
            v[0] *= inv; v[1] *= inv; v[2] *= inv;
        } else {  /* bilinear, pixel centres, border clamped (cv2 INTER_LINEAR) */
            float sxf = (x + 0.5f) * fx - 0.5f, syf = (y + 0.5f) * fy - 0.5f;
            int sx = (int)floorf(sxf), sy = (int)floorf(syf);
            float ax = sxf - sx, ay = syf - sy;
            if (sx < 0) { sx = 0; ax = 0.f; }
            if (sx >= sw - 1) { sx = sw - 1; ax = 0.f; }
            if (sy < 0) { sy = 0; ay = 0.f; }
            if (sy >= sh - 1) { sy = sh - 1; ay = 0.f; }
            int sx1 = min(sx + 1, sw - 1), sy1 = min(sy + 1, sh - 1);
            const unsigned char* r0 = src + (size_t)sy * spitch;
            const unsigned char* r1 = src + (size_t)sy1 * spitch;
            for (int c = 0; c < 3; ++c) {
                float top = (1.f - ax) * r0[sx * 3 + c] + ax * r0[sx1 * 3 + c];
                float bottom = (1.f - ax) * r1[sx * 3 + c] + ax * r1[sx1 * 3 + c];
                v[c] = (1.f - ay) * top + ay * bottom;
            }
        }
        for (int c = 0; c < 3; ++c) v[c] = fminf(fmaxf(floorf(v[c] + 0.5f), 0.f), 255.f);  /* the uint8 image */
    }
    size_t plane = (size_t)pw * ph, at = (size_t)y * pw + x;
    dst[at] = v[0]; dst[plane + at] = v[1]; dst[2 * plane + at] = v[2];
}
"""


def _area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) float32 weights: output pixel i covers source [i f, (i+1) f), f = src / dst, by coverage."""
    f = np.float32(src) / np.float32(dst)
    w = np.zeros((dst, src), np.float32)
    for i in range(dst):
        lo = np.float32(i) * f
        hi = lo + f
        for s in range(int(math.floor(lo)), min(int(math.ceil(hi)), src)):
            w[i, s] = min(hi, np.float32(s + 1)) - max(lo, np.float32(s))
    return w


def _linear_taps(src: int, dst: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, a) per output pixel: bilinear taps with pixel centres, clamped at the border as cv2 does."""
    f = np.float32(src) / np.float32(dst)
    pos = (np.arange(dst, dtype=np.float32) + np.float32(0.5)) * f - np.float32(0.5)
    i0 = np.floor(pos).astype(np.int64)
    a = (pos - i0).astype(np.float32)
    a[i0 < 0] = 0
    i0[i0 < 0] = 0
    edge = i0 >= src - 1
    a[edge] = 0
    i0[edge] = src - 1
    return i0, np.minimum(i0 + 1, src - 1), a


def reference(bgr: np.ndarray, size: Tuple[int, int], padded: Tuple[int, int], area: bool) -> np.ndarray:
    """What the kernel writes, in numpy (float32 as on the GPU): (1, 3, ph, pw) from an (H, W, 3) uint8 BGR image
    resized to ``size`` (w, h) and zero-padded to ``padded`` (w, h)."""
    img = np.asarray(bgr)
    sh, sw = img.shape[:2]
    (rw, rh), (pw, ph) = size, padded
    src = img.astype(np.float32)
    if area:
        wy, wx = _area_weights(sh, rh), _area_weights(sw, rw)
        out = np.einsum("ys,sxc->yxc", wy, np.einsum("xs,ysc->yxc", wx, src)) / (
            (np.float32(sw) / np.float32(rw)) * (np.float32(sh) / np.float32(rh)))
    else:
        x0, x1, ax = _linear_taps(sw, rw)
        y0, y1, ay = _linear_taps(sh, rh)
        ax, ay = ax[None, :, None], ay[:, None, None]
        top = (1 - ax) * src[y0][:, x0] + ax * src[y0][:, x1]
        bottom = (1 - ax) * src[y1][:, x0] + ax * src[y1][:, x1]
        out = (1 - ay) * top + ay * bottom
    out = np.clip(np.floor(out.astype(np.float32) + np.float32(0.5)), 0, 255)
    blob = np.zeros((1, 3, ph, pw), np.float32)
    blob[0, :, :rh, :rw] = out.transpose(2, 0, 1)
    return blob


def grid(pw: int, ph: int) -> Tuple[int, int, int]:
    return ((pw + BLOCK[0] - 1) // BLOCK[0], (ph + BLOCK[1] - 1) // BLOCK[1], 1)


class _NvrtcKernel:
    """Compiled with NVRTC and launched with the driver API (cuda-python)."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import driver, nvrtc
        except ImportError:  # cuda-python < 12.6
            from cuda import cuda as driver  # type: ignore[no-redef]
            from cuda import nvrtc  # type: ignore[no-redef]
        self.driver = driver
        err, prog = nvrtc.nvrtcCreateProgram(SOURCE.encode(), b"preprocess.cu", 0, [], [])
        self._check(nvrtc, err, "nvrtcCreateProgram")
        (err,) = nvrtc.nvrtcCompileProgram(prog, 0, [])  # PTX for NVRTC's default arch, JIT-compiled by the driver
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            _, size = nvrtc.nvrtcGetProgramLogSize(prog)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError("NVRTC cannot compile the preprocessing kernel: {}".format(log.decode(errors="replace")))
        err, size = nvrtc.nvrtcGetPTXSize(prog)
        self._check(nvrtc, err, "nvrtcGetPTXSize")
        ptx = b" " * size
        (err,) = nvrtc.nvrtcGetPTX(prog, ptx)
        self._check(nvrtc, err, "nvrtcGetPTX")
        nvrtc.nvrtcDestroyProgram(prog)
        self._ptx = np.char.array(ptx)  # held while the driver reads it
        err, self.module = driver.cuModuleLoadData(self._ptx.ctypes.data)
        self._check(driver, err, "cuModuleLoadData")
        err, self.function = driver.cuModuleGetFunction(self.module, KERNEL_NAME.encode())
        self._check(driver, err, "cuModuleGetFunction")

    @staticmethod
    def _check(mod: Any, err: Any, what: str) -> None:
        ok = getattr(getattr(mod, "nvrtcResult", None), "NVRTC_SUCCESS", None)
        if ok is None:
            ok = mod.CUresult.CUDA_SUCCESS
        if err != ok:
            raise RuntimeError("{} failed: {}".format(what, err))

    def launch(self, src: int, sw: int, sh: int, spitch: int, dst: int, rw: int, rh: int, pw: int, ph: int,
               area: bool, stream: int) -> None:
        # each argument in an array of its C type; the kernel gets the array of their addresses (cuda-python's way)
        values = [np.array([src], np.uint64), np.array([sw], np.int32), np.array([sh], np.int32),
                  np.array([spitch], np.int32), np.array([dst], np.uint64), np.array([rw], np.int32),
                  np.array([rh], np.int32), np.array([pw], np.int32), np.array([ph], np.int32),
                  np.array([1 if area else 0], np.int32)]
        args = np.array([v.ctypes.data for v in values], np.uint64)
        gx, gy, gz = grid(pw, ph)
        (err,) = self.driver.cuLaunchKernel(self.function, gx, gy, gz, BLOCK[0], BLOCK[1], BLOCK[2], 0,
                                            self.driver.CUstream(stream), args.ctypes.data, 0)
        self._check(self.driver, err, "cuLaunchKernel")


class _PycudaKernel:
    """Compiled with pycuda's SourceModule (nvcc) and launched on the runner's pycuda stream."""

    def __init__(self, cuda: Any) -> None:
        from pycuda.compiler import SourceModule

        self.stream = cuda.stream
        self.function = SourceModule(SOURCE, no_extern_c=True).get_function(KERNEL_NAME)

    def launch(self, src: int, sw: int, sh: int, spitch: int, dst: int, rw: int, rh: int, pw: int, ph: int,
               area: bool, stream: int) -> None:
        i = np.int32
        self.function(np.uintp(src), i(sw), i(sh), i(spitch), np.uintp(dst), i(rw), i(rh), i(pw), i(ph),
                      i(1 if area else 0), block=BLOCK, grid=grid(pw, ph), stream=self.stream)


def compile_kernel(cuda: Any) -> Any:
    """The preprocessing kernel for the runner's CUDA (``tensorrt_backend._Cuda``): an object with ``launch``.
    Raises when it cannot be compiled here (no NVRTC, no nvcc). Call it from the thread that will launch it."""
    if getattr(cuda, "rt", None) is not None:
        cuda.rt.cudaFree(0)  # binds the runtime's primary context to this thread, for the driver API calls below
        return _NvrtcKernel()
    return _PycudaKernel(cuda)
