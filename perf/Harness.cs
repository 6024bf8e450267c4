using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Perf;

/// <summary>Raised when an engine kernel disagrees with its CPU reference: the harness stops there.</summary>
internal sealed class ValidationException(string message) : Exception(message);

/// <summary>
/// One benchmark = validate the engine kernel against the CPU reference (in full on a reduced
/// instance, and on sampled elements of the full-size result), then time it and OpenBLAS
/// <c>cblas_sgemm</c> on the same GEMM shape, and print one JSON line.
/// </summary>
internal sealed class Harness(ComputeDevice device, bool quick)
{
    private const int Samples = 96;

    /// <summary>Rounds of engine-then-OpenBLAS timing blocks.</summary>
    private int Rounds => quick ? 1 : 3;

    /// <summary>Timed runs per block: 3 (quick) or 9 runs in all per side.</summary>
    private int PerRound => 3;

    private string DeviceName => device.Description;

    /// <summary>C[m, n] = A[m, k] * B[k, n], all row-major, against sgemm on the same shape.</summary>
    public void Gemm(int m, int n, int k)
    {
        string name = $"gemm_{m}x{k}x{n}";
        int mr = Math.Min(m, 67), nr = Math.Min(n, 333);
        CheckGemmInFull(name, mr, nr, k);

        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        using var ad = device.Accelerator.Allocate1D(a);
        using var bd = device.Accelerator.Allocate1D(b);
        using var cd = device.Allocate(m * n);
        var gemm = device.Kernels.Gemm;
        void Run() => gemm.Run(false, false, m, n, k, 1f, ad.View, k, bd.View, n, 0f, cd.View, n);
        var (timing, reference) = Measure.TimePair(Run, device.Synchronize, Sgemm(false, false, m, n, k), Rounds, PerRound);
        var c = cd.GetAsArray1D();
        var random = new Random(3);
        for (int s = 0; s < Samples; s++)
        {
            int i = s == 0 ? m - 1 : random.Next(m);
            int j = s == 0 ? n - 1 : random.Next(n);
            double expected = 0, magnitude = 0;
            for (int p = 0; p < k; p++)
            {
                double term = (double)a[i * k + p] * b[p * n + j];
                expected += term;
                magnitude += Math.Abs(term);
            }
            Expect(c[i * n + j], expected, magnitude, $"{name} C[{i},{j}]");
        }

        Measure.Report(name, "gemm", m, n, k, 2.0 * m * n * k, timing, reference, "openblas_sgemm", DeviceName,
            $"reference {mr}x{k}x{nr} in full, {Samples} sampled elements of the full result");
    }

    /// <summary>Forward, backward-input and backward-weight of one convolution, against sgemm on its im2col shapes.</summary>
    public void Conv(string layer, ConvGeometry g)
    {
        int m = g.GemmM, n = (int)g.GemmN, k = g.GemmK;
        string shape = $"{g.InChannels}x{g.InHeight}x{g.InWidth}_to_{g.OutChannels}_k{g.KernelHeight}s{g.Stride}p{g.Padding}_b{g.Batch}";
        var reduced = g with { Batch = 1 };
        CheckConvInFull(layer, reduced);
        string validation = $"reference at batch 1 in full, {Samples} sampled elements of the batch-{g.Batch} result";

        var x = Random((int)g.InputLength, 4);
        var w = Random((int)g.WeightLength, 5);
        var dy = Random((int)g.OutputLength, 6);
        var conv = device.Kernels.Conv;
        using var xd = device.Accelerator.Allocate1D(x);
        using var wd = device.Accelerator.Allocate1D(w);
        using var dyd = device.Accelerator.Allocate1D(dy);
        using var yd = device.Allocate(g.OutputLength);
        using var dxd = device.Allocate(g.InputLength);
        using var dwd = device.Allocate(g.WeightLength);
        using var workspace = device.Allocate(Math.Max(1, conv.WorkspaceLength(g)));
        double flops = g.ForwardFlops;

        void Forward() => conv.Forward(g, xd.View, wd.View, yd.View, workspace.View);
        var (timing, reference) = Measure.TimePair(Forward, device.Synchronize, Sgemm(false, false, m, n, k), Rounds, PerRound);
        CheckConvSamples(g, x, w, dy, yd.GetAsArray1D(), ConvOp.Forward, layer);
        Measure.Report($"conv_forward_{layer}_{shape}", "conv2d_forward", m, n, k, flops, timing,
            reference, "openblas_sgemm_im2col_shape", DeviceName, validation);

        dxd.MemSetToZero();
        conv.BackwardInput(g, dyd.View, wd.View, dxd.View, workspace.View);
        CheckConvSamples(g, x, w, dy, dxd.GetAsArray1D(), ConvOp.BackwardInput, layer);
        void BackwardInput() => conv.BackwardInput(g, dyd.View, wd.View, dxd.View, workspace.View);
        (timing, reference) = Measure.TimePair(BackwardInput, device.Synchronize, Sgemm(true, false, k, n, m), Rounds, PerRound);
        Measure.Report($"conv_backward_input_{layer}_{shape}", "conv2d_backward_input", m, n, k, flops, timing,
            reference, "openblas_sgemm_TN_dcol_shape_without_col2im", DeviceName, validation);

        dwd.MemSetToZero();
        conv.BackwardWeight(g, dyd.View, xd.View, dwd.View, workspace.View);
        CheckConvSamples(g, x, w, dy, dwd.GetAsArray1D(), ConvOp.BackwardWeight, layer);
        void BackwardWeight() => conv.BackwardWeight(g, dyd.View, xd.View, dwd.View, workspace.View);
        (timing, reference) = Measure.TimePair(BackwardWeight, device.Synchronize, Sgemm(false, true, m, k, n), Rounds, PerRound);
        Measure.Report($"conv_backward_weight_{layer}_{shape}", "conv2d_backward_weight", m, n, k, flops, timing,
            reference, "openblas_sgemm_NT_im2col_shape", DeviceName, validation);
    }

    private enum ConvOp
    {
        Forward,
        BackwardInput,
        BackwardWeight,
    }

    /// <summary>One OpenBLAS sgemm call on random operands of the given shape, ready to time.</summary>
    private static Action Sgemm(bool transA, bool transB, int m, int n, int k)
    {
        var a = Random(m * k, 7);
        var b = Random(k * n, 8);
        var c = new float[m * n];
        int lda = transA ? m : k, ldb = transB ? k : n;
        return () => OpenBlas.Sgemm(transA, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
    }

    private void CheckGemmInFull(string name, int m, int n, int k)
    {
        var a = Random(m * k, 9);
        var b = Random(k * n, 10);
        var expected = new float[m * n];
        GemmReference.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        using var ad = device.Accelerator.Allocate1D(a);
        using var bd = device.Accelerator.Allocate1D(b);
        using var cd = device.Allocate(m * n);
        device.Kernels.Gemm.Run(false, false, m, n, k, 1f, ad.View, k, bd.View, n, 0f, cd.View, n);
        device.Synchronize();
        CompareAll(expected, cd.GetAsArray1D(), k, $"{name} reduced {m}x{k}x{n}");
    }

    private void CheckConvInFull(string layer, ConvGeometry g)
    {
        var x = Random((int)g.InputLength, 11);
        var w = Random((int)g.WeightLength, 12);
        var dy = Random((int)g.OutputLength, 13);
        var conv = device.Kernels.Conv;
        using var xd = device.Accelerator.Allocate1D(x);
        using var wd = device.Accelerator.Allocate1D(w);
        using var dyd = device.Accelerator.Allocate1D(dy);
        using var yd = device.Allocate(g.OutputLength);
        using var dxd = device.Allocate(g.InputLength);
        using var dwd = device.Allocate(g.WeightLength);
        using var workspace = device.Allocate(Math.Max(1, conv.WorkspaceLength(g)));
        dxd.MemSetToZero();
        dwd.MemSetToZero();
        conv.Forward(g, xd.View, wd.View, yd.View, workspace.View);
        conv.BackwardInput(g, dyd.View, wd.View, dxd.View, workspace.View);
        conv.BackwardWeight(g, dyd.View, xd.View, dwd.View, workspace.View);
        device.Synchronize();

        CompareAll(ConvReference.Forward(g, x, w), yd.GetAsArray1D(), g.GemmK, $"{layer} conv forward (batch {g.Batch})");
        var dx = new float[g.InputLength];
        ConvReference.BackwardInput(g, dy, w, dx);
        CompareAll(dx, dxd.GetAsArray1D(), g.OutChannels * g.KernelHeight * g.KernelWidth, $"{layer} conv backward input (batch {g.Batch})");
        var dw = new float[g.WeightLength];
        ConvReference.BackwardWeight(g, dy, x, dw);
        CompareAll(dw, dwd.GetAsArray1D(), (int)g.GemmN, $"{layer} conv backward weight (batch {g.Batch})");
    }

    /// <summary>Recomputes sampled elements of a full-size conv result directly from the definition, in double.</summary>
    private static void CheckConvSamples(ConvGeometry g, float[] x, float[] w, float[] dy, float[] result, ConvOp op, string layer)
    {
        var random = new Random(14);
        for (int sample = 0; sample < Samples; sample++)
        {
            int index = sample == 0 ? result.Length - 1 : random.Next(result.Length);
            var (sum, magnitude) = op switch
            {
                ConvOp.Forward => ForwardAt(g, x, w, index),
                ConvOp.BackwardInput => BackwardInputAt(g, w, dy, index),
                _ => BackwardWeightAt(g, x, dy, index),
            };
            Expect(result[index], sum, magnitude, $"{layer} conv {op} (batch {g.Batch}) element {index}");
        }
    }

    /// <summary>y[index] and the sum of |terms|: the sum over (ci, kh, kw) of x * w.</summary>
    private static (double Sum, double Magnitude) ForwardAt(ConvGeometry g, float[] x, float[] w, int index)
    {
        int ow = index % g.OutWidth, oh = index / g.OutWidth % g.OutHeight;
        int co = index / (g.OutWidth * g.OutHeight) % g.OutChannels, b = index / (g.OutWidth * g.OutHeight * g.OutChannels);
        double sum = 0, magnitude = 0;
        for (int ci = 0; ci < g.InChannels; ci++)
        {
            for (int kh = 0; kh < g.KernelHeight; kh++)
            {
                for (int kw = 0; kw < g.KernelWidth; kw++)
                {
                    int ih = oh * g.Stride - g.Padding + kh, iw = ow * g.Stride - g.Padding + kw;
                    if (ih >= 0 && ih < g.InHeight && iw >= 0 && iw < g.InWidth)
                    {
                        double term = (double)x[InputIndex(g, b, ci, ih, iw)] * w[WeightIndex(g, co, ci, kh, kw)];
                        sum += term;
                        magnitude += Math.Abs(term);
                    }
                }
            }
        }
        return (sum, magnitude);
    }

    /// <summary>dx[index] from zero: the sum over (co, kh, kw) of the output positions that read it.</summary>
    private static (double Sum, double Magnitude) BackwardInputAt(ConvGeometry g, float[] w, float[] dy, int index)
    {
        int iw = index % g.InWidth, ih = index / g.InWidth % g.InHeight;
        int ci = index / (g.InWidth * g.InHeight) % g.InChannels, b = index / (g.InWidth * g.InHeight * g.InChannels);
        double sum = 0, magnitude = 0;
        for (int co = 0; co < g.OutChannels; co++)
        {
            for (int kh = 0; kh < g.KernelHeight; kh++)
            {
                for (int kw = 0; kw < g.KernelWidth; kw++)
                {
                    int th = ih + g.Padding - kh, tw = iw + g.Padding - kw;
                    if (th >= 0 && tw >= 0 && th % g.Stride == 0 && tw % g.Stride == 0 && th / g.Stride < g.OutHeight && tw / g.Stride < g.OutWidth)
                    {
                        double term = (double)dy[OutputIndex(g, b, co, th / g.Stride, tw / g.Stride)] * w[WeightIndex(g, co, ci, kh, kw)];
                        sum += term;
                        magnitude += Math.Abs(term);
                    }
                }
            }
        }
        return (sum, magnitude);
    }

    /// <summary>dw[index] from zero: the sum over (b, oh, ow) of dy * x.</summary>
    private static (double Sum, double Magnitude) BackwardWeightAt(ConvGeometry g, float[] x, float[] dy, int index)
    {
        int kw = index % g.KernelWidth, kh = index / g.KernelWidth % g.KernelHeight;
        int ci = index / (g.KernelWidth * g.KernelHeight) % g.InChannels, co = index / (g.KernelWidth * g.KernelHeight * g.InChannels);
        double sum = 0, magnitude = 0;
        for (int b = 0; b < g.Batch; b++)
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                for (int ow = 0; ow < g.OutWidth; ow++)
                {
                    int ih = oh * g.Stride - g.Padding + kh, iw = ow * g.Stride - g.Padding + kw;
                    if (ih >= 0 && ih < g.InHeight && iw >= 0 && iw < g.InWidth)
                    {
                        double term = (double)dy[OutputIndex(g, b, co, oh, ow)] * x[InputIndex(g, b, ci, ih, iw)];
                        sum += term;
                        magnitude += Math.Abs(term);
                    }
                }
            }
        }
        return (sum, magnitude);
    }

    private static int InputIndex(ConvGeometry g, int b, int c, int h, int w) => ((b * g.InChannels + c) * g.InHeight + h) * g.InWidth + w;

    private static int WeightIndex(ConvGeometry g, int co, int ci, int kh, int kw) => ((co * g.InChannels + ci) * g.KernelHeight + kh) * g.KernelWidth + kw;

    private static int OutputIndex(ConvGeometry g, int b, int c, int h, int w) => ((b * g.OutChannels + c) * g.OutHeight + h) * g.OutWidth + w;

    private static void CompareAll(float[] expected, float[] actual, int terms, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = 1e-4 * Math.Abs(expected[i]) + 4e-6 * terms;
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance))
            {
                throw new ValidationException($"{what}: element {i} is {actual[i]}, the CPU reference says {expected[i]}");
            }
        }
    }

    private static void Expect(float actual, double expected, double magnitude, string what)
    {
        double tolerance = 1e-5 * magnitude + 1e-5;
        if (!(Math.Abs(actual - expected) <= tolerance))
        {
            throw new ValidationException($"{what} is {actual}, the reference sum in double is {expected}");
        }
    }

    private static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }
        return values;
    }
}
