using System.Diagnostics;
using System.Text.Json;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Perf;

/// <summary>
/// SWAT sparse convolutions (<see cref="SparseConvKernels"/>) against the dense engine
/// (<see cref="Conv2dKernels"/>) and OpenBLAS sgemm on the same im2col shape. Weights keep a random
/// top-K-like mask of density d (exactly round(d * size) entries), activations likewise (SWAT-U:
/// the same density). Each benchmark first validates the sparse result of the full-size layer
/// against the dense engine kernel applied to the masked tensors (every element; the dense kernel
/// is validated against the CPU reference by the conv suite) and the batch-1 layer in full against
/// <see cref="SparseConvReference"/>, then times sparse, dense and OpenBLAS in alternating blocks.
/// FLOPs are dense-equivalent (2 * M * N * K) for every op, so gflops = what a dense kernel would
/// need to match the sparse one.
/// </summary>
internal sealed class SparseConvBench(ComputeDevice device, bool quick)
{
    private const int OpenBlasSpinMs = 250;

    private int Rounds => quick ? 1 : 3;

    private const int PerRound = 3;

    /// <summary>Forward, backward input and backward weight of one layer at one density, plus a line with their totals.</summary>
    public void Layer(string layer, ConvGeometry g, double density)
    {
        string name = $"{layer}_{Shape(g)}_d{density}";
        CheckReducedInFull(name, g with { Batch = 1 }, density);
        using var t = new Tensors(device, g, density, seed: 1);
        t.CheckAgainstDenseEngine(name);
        string validation = "full-size result == dense engine on the masked tensors (every element); batch 1 == SparseConvReference in full";
        int m = g.GemmM, n = (int)g.GemmN, k = g.GemmK;
        double flops = g.ForwardFlops;

        var forward = TimeThree(t.SparseForward, t.DenseForward, Sgemm(false, false, m, n, k));
        Report($"sparse_conv_forward_{name}", "sparse_conv2d_forward", g, density, flops, forward, "openblas_sgemm_im2col_shape", validation);
        var input = TimeThree(t.SparseBackwardInput, t.DenseBackwardInput, Sgemm(true, false, k, n, m));
        Report($"sparse_conv_backward_input_{name}", "sparse_conv2d_backward_input", g, density, flops, input, "openblas_sgemm_TN_dcol_shape_without_col2im", validation);
        var weight = TimeThree(t.SparseBackwardWeight, t.DenseBackwardWeight, Sgemm(false, true, m, k, n));
        Report($"sparse_conv_backward_weight_{name}", "sparse_conv2d_backward_weight", g, density, flops, weight, "openblas_sgemm_NT_im2col_shape", validation);

        double sparse = forward.Sparse.MedianMs + input.Sparse.MedianMs + weight.Sparse.MedianMs;
        double dense = forward.Dense.MedianMs + input.Dense.MedianMs + weight.Dense.MedianMs;
        Print(new Dictionary<string, object>
        {
            ["name"] = $"sparse_conv_step_{name}",
            ["op"] = "sparse_conv2d_three_passes",
            ["density"] = density,
            ["sparse_ms"] = Math.Round(sparse, 3),
            ["dense_engine_ms"] = Math.Round(dense, 3),
            ["sparse_over_dense"] = Math.Round(sparse / dense, 3),
            ["gflops"] = Math.Round(3 * flops / (sparse * 1e6), 1),
            ["dense_engine_gflops"] = Math.Round(3 * flops / (dense * 1e6), 1),
            ["device"] = device.Description,
        });
    }

    /// <summary>
    /// The sparse passes alone (validated against the dense engine first), for iterating on the
    /// kernels: one line per layer with the median ms of forward, backward input and backward weight.
    /// </summary>
    public void SparseOnly(string layer, ConvGeometry g, double density)
    {
        string name = $"{layer}_{Shape(g)}_d{density}";
        using var t = new Tensors(device, g, density, seed: 1);
        t.CheckAgainstDenseEngine(name);
        double forward = Median(TimeBlocks(t.SparseForward));
        double input = Median(TimeBlocks(t.SparseBackwardInput));
        double weight = Median(TimeBlocks(t.SparseBackwardWeight));
        Print(new Dictionary<string, object>
        {
            ["name"] = $"sparse_conv_passes_{name}",
            ["forward_ms"] = Math.Round(forward, 3),
            ["backward_input_ms"] = Math.Round(input, 3),
            ["backward_weight_ms"] = Math.Round(weight, 3),
            ["sum_ms"] = Math.Round(forward + input + weight, 3),
            ["forward_actual_gflops"] = Math.Round(density * g.ForwardFlops / (forward * 1e6), 1),
            ["device"] = device.Description,
        });
    }

    /// <summary>
    /// The three passes at increasing densities against the dense engine (timed once per layer):
    /// prints each density's sparse/dense time ratio and the interpolated density where it reaches 1.
    /// </summary>
    public void Crossover(string layer, ConvGeometry g, double[] densities)
    {
        using var dense = new Tensors(device, g, 1.0, seed: 2);
        double denseMs = Median(TimeBlocks(() => { dense.DenseForward(); dense.DenseBackwardInput(); dense.DenseBackwardWeight(); }));
        var ratios = new List<(double Density, double Ratio)>();
        foreach (double density in densities)
        {
            using var t = new Tensors(device, g, density, seed: 3);
            double sparseMs = Median(TimeBlocks(() => { t.SparseForward(); t.SparseBackwardInput(); t.SparseBackwardWeight(); }));
            ratios.Add((density, sparseMs / denseMs));
        }
        double? crossover = null;
        for (int i = 1; i < ratios.Count && crossover is null; i++)
        {
            var (d0, r0) = ratios[i - 1];
            var (d1, r1) = ratios[i];
            if (r0 < 1 && r1 >= 1)
            {
                crossover = d0 + (1 - r0) * (d1 - d0) / (r1 - r0);
            }
        }
        Print(new Dictionary<string, object>
        {
            ["name"] = $"sparse_conv_crossover_{layer}_{Shape(g)}",
            ["op"] = "sparse_conv2d_crossover",
            ["dense_engine_ms"] = Math.Round(denseMs, 3),
            ["sparse_over_dense_by_density"] = ratios.ToDictionary(r => r.Density.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture), r => Math.Round(r.Ratio, 3)),
            ["crossover_density"] = crossover is double c ? Math.Round(c, 3) : (ratios[^1].Ratio < 1 ? "above the densities tried" : "below the densities tried"),
            ["device"] = device.Description,
        });
    }

    private static string Shape(ConvGeometry g) =>
        $"{g.InChannels}x{g.InHeight}x{g.InWidth}_to_{g.OutChannels}_k{g.KernelHeight}s{g.Stride}p{g.Padding}_b{g.Batch}";

    /// <summary>Sparse, dense and OpenBLAS in alternating blocks (one untimed warm-up per block).</summary>
    private (Timing Sparse, Timing Dense, Timing Reference) TimeThree(Action sparse, Action dense, Action reference)
    {
        var sparseTimes = new List<double>();
        var denseTimes = new List<double>();
        var referenceTimes = new List<double>();
        var probe = LoadProbe.Start();
        for (int round = 0; round < Rounds; round++)
        {
            sparseTimes.AddRange(TimeBlock(sparse));
            denseTimes.AddRange(TimeBlock(dense));
            referenceTimes.AddRange(TimeBlock(reference));
            Thread.Sleep(OpenBlasSpinMs);
        }
        double? background = probe.BackgroundShare();
        return (Summary(sparseTimes, background), Summary(denseTimes, background), Summary(referenceTimes, background));
    }

    private List<double> TimeBlocks(Action run)
    {
        var times = new List<double>();
        for (int round = 0; round < Rounds; round++)
        {
            times.AddRange(TimeBlock(run));
        }
        return times;
    }

    private List<double> TimeBlock(Action run)
    {
        var times = new List<double>();
        run();
        device.Synchronize();
        for (int i = 0; i < PerRound; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            device.Synchronize();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return times;
    }

    private static double Median(List<double> times)
    {
        var sorted = times.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    private static Timing Summary(List<double> times, double? background) => new(Median(times), times.Min(), background);

    private void Report(string name, string op, ConvGeometry g, double density, double flops,
        (Timing Sparse, Timing Dense, Timing Reference) t, string reference, string validation)
    {
        double gflops = flops / (t.Sparse.MedianMs * 1e6);
        double referenceGflops = flops / (t.Reference.MedianMs * 1e6);
        Print(new Dictionary<string, object>
        {
            ["name"] = name,
            ["op"] = op,
            ["m"] = g.GemmM,
            ["n"] = (int)g.GemmN,
            ["k"] = g.GemmK,
            ["weight_density"] = density,
            ["activation_density"] = density,
            ["ms"] = Math.Round(t.Sparse.MedianMs, 3),
            ["gflops"] = Math.Round(gflops, 1),
            ["best_gflops"] = Math.Round(flops / (t.Sparse.BestMs * 1e6), 1),
            ["sparse_actual_gflops"] = Math.Round(density * gflops, 1),
            ["dense_engine_ms"] = Math.Round(t.Dense.MedianMs, 3),
            ["dense_engine_gflops"] = Math.Round(flops / (t.Dense.MedianMs * 1e6), 1),
            ["speedup_vs_dense_engine"] = Math.Round(t.Dense.MedianMs / t.Sparse.MedianMs, 2),
            ["reference"] = reference,
            ["reference_ms"] = Math.Round(t.Reference.MedianMs, 3),
            ["reference_gflops"] = Math.Round(referenceGflops, 1),
            ["reference_best_gflops"] = Math.Round(flops / (t.Reference.BestMs * 1e6), 1),
            ["ratio"] = Math.Round(gflops / referenceGflops, 3),
            ["device"] = device.Description,
            ["background_cpu_share"] = t.Sparse.BackgroundShare is double share ? Math.Round(share, 2) : null!,
            ["validated"] = validation,
        });
    }

    private static void Print(Dictionary<string, object> line) => Console.WriteLine(JsonSerializer.Serialize(line));

    private static Action Sgemm(bool transA, bool transB, int m, int n, int k)
    {
        var a = Random(m * k, 7);
        var b = Random(k * n, 8);
        var c = new float[m * n];
        int lda = transA ? m : k, ldb = transB ? k : n;
        return () => OpenBlas.Sgemm(transA, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
    }

    /// <summary>The batch-1 layer: every element of the three sparse passes against the plain-loop reference.</summary>
    private void CheckReducedInFull(string name, ConvGeometry g, double density)
    {
        using var t = new Tensors(device, g, density, seed: 4);
        t.Dx.MemSetToZero();
        t.Dw.MemSetToZero();
        t.SparseForward();
        t.SparseBackwardInput();
        t.SparseBackwardWeight();
        device.Synchronize();
        Compare(SparseConvReference.Forward(g, t.X, t.Csr.RowPointers, t.Csr.Columns, t.Csr.Values), t.Y.GetAsArray1D(),
            g.GemmK, $"{name} sparse forward (batch 1)");
        var dx = new float[g.InputLength];
        SparseConvReference.BackwardInput(g, t.Dy, t.Csr.RowPointers, t.Csr.Columns, t.Csr.Values, dx);
        Compare(dx, t.Dx.GetAsArray1D(), g.OutChannels * g.KernelHeight * g.KernelWidth, $"{name} sparse backward input (batch 1)");
        var dw = new float[g.WeightLength];
        SparseConvReference.BackwardWeight(g, t.Dy, t.XValues, t.XIndices, dw);
        Compare(dw, t.Dw.GetAsArray1D(), (int)g.GemmN, $"{name} sparse backward weight (batch 1)");
    }

    private static void Compare(float[] expected, float[] actual, int terms, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = 1e-4 * Math.Abs(expected[i]) + 4e-6 * terms;
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance))
            {
                throw new ValidationException($"{what}: element {i} is {actual[i]}, the reference says {expected[i]}");
            }
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

    /// <summary>Exactly round(density * length) positions chosen at random, increasing.</summary>
    private static int[] RandomMask(int length, double density, int seed)
    {
        int keep = (int)Math.Round(density * length);
        var random = new Random(seed);
        var order = new int[length];
        for (int i = 0; i < length; i++)
        {
            order[i] = i;
        }
        for (int i = 0; i < keep; i++)
        {
            int j = random.Next(i, length);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var kept = order[..keep];
        Array.Sort(kept);
        return kept;
    }

    /// <summary>One layer's operands on the device: dense, masked-dense and sparse forms.</summary>
    private sealed class Tensors : IDisposable
    {
        private readonly ComputeDevice device;
        private readonly ConvGeometry g;
        private readonly List<IDisposable> buffers = [];
        private readonly ArrayView<float> x;
        private readonly ArrayView<float> xMasked;
        private readonly ArrayView<float> w;
        private readonly ArrayView<float> wMasked;
        private readonly ArrayView<float> dy;
        private readonly ArrayView<int> rowPointers;
        private readonly ArrayView<int> columns;
        private readonly ArrayView<float> values;
        private readonly ArrayView<float> xValues;
        private readonly ArrayView<int> xIndices;
        private readonly ArrayView<float> sparseScratch;
        private readonly ArrayView<float> denseWorkspace;

        public Tensors(ComputeDevice device, ConvGeometry g, double density, int seed)
        {
            this.device = device;
            this.g = g;
            X = Random((int)g.InputLength, seed);
            var wDense = Random((int)g.WeightLength, seed + 1);
            Dy = Random((int)g.OutputLength, seed + 2);
            var wKept = new float[wDense.Length];
            foreach (int i in RandomMask(wDense.Length, density, seed + 3))
            {
                wKept[i] = wDense[i];
            }
            Csr = CsrReference.Encode(wKept, g.OutChannels, g.GemmK);
            XIndices = RandomMask(X.Length, density, seed + 4);
            XValues = XIndices.Select(i => X[i]).ToArray();
            var xKept = SparseConvReference.DenseActivations(g, XValues, XIndices);

            x = Upload(X);
            xMasked = Upload(xKept);
            w = Upload(wDense);
            wMasked = Upload(wKept);
            dy = Upload(Dy);
            rowPointers = Upload(Csr.RowPointers);
            columns = Upload(NonEmpty(Csr.Columns)).SubView(0, Csr.Columns.Length);
            values = Upload(NonEmpty(Csr.Values)).SubView(0, Csr.Values.Length);
            xValues = Upload(NonEmpty(XValues));
            xIndices = Upload(NonEmpty(XIndices));
            Y = Own(device.Allocate(g.OutputLength));
            Dx = Own(device.Allocate(g.InputLength));
            Dw = Own(device.Allocate(g.WeightLength));
            sparseScratch = Own(device.Allocate(Math.Max(1, device.Kernels.SparseConv.ScratchLength(g)))).View;
            denseWorkspace = Own(device.Allocate(Math.Max(1, device.Kernels.Conv.WorkspaceLength(g)))).View;
        }

        public float[] X { get; }

        public float[] Dy { get; }

        public (int[] RowPointers, int[] Columns, float[] Values) Csr { get; }

        public float[] XValues { get; }

        public int[] XIndices { get; }

        public MemoryBuffer1D<float, Stride1D.Dense> Y { get; }

        public MemoryBuffer1D<float, Stride1D.Dense> Dx { get; }

        public MemoryBuffer1D<float, Stride1D.Dense> Dw { get; }

        private SparseConvKernels Sparse => device.Kernels.SparseConv;

        private Conv2dKernels Dense => device.Kernels.Conv;

        public void SparseForward() => Sparse.Forward(g, x, rowPointers, columns, values, Y.View, sparseScratch);

        public void SparseBackwardInput() => Sparse.BackwardInput(g, dy, rowPointers, columns, values, Dx.View, sparseScratch);

        public void SparseBackwardWeight() => Sparse.BackwardWeight(g, dy, xValues, xIndices, XValues.Length, Dw.View, sparseScratch);

        /// <summary>The dense engine on the dense weights and full input (what sparse training replaces).</summary>
        public void DenseForward() => Dense.Forward(g, x, w, Y.View, denseWorkspace);

        public void DenseBackwardInput() => Dense.BackwardInput(g, dy, w, Dx.View, denseWorkspace);

        public void DenseBackwardWeight() => Dense.BackwardWeight(g, dy, x, Dw.View, denseWorkspace);

        /// <summary>The full-size sparse results against the dense engine on the masked tensors, every element.</summary>
        public void CheckAgainstDenseEngine(string name)
        {
            using var expected = device.Allocate(Math.Max(g.InputLength, Math.Max(g.OutputLength, g.WeightLength)));
            var e = expected.View;
            SparseForward();
            Dense.Forward(g, x, wMasked, e, denseWorkspace);
            device.Synchronize();
            Compare(e.SubView(0, g.OutputLength).GetAsArray1D(), Y.GetAsArray1D(), g.GemmK, $"{name} sparse forward vs dense engine");

            Dx.MemSetToZero();
            SparseBackwardInput();
            e.SubView(0, g.InputLength).MemSetToZero();
            Dense.BackwardInput(g, dy, wMasked, e, denseWorkspace);
            device.Synchronize();
            Compare(e.SubView(0, g.InputLength).GetAsArray1D(), Dx.GetAsArray1D(), g.OutChannels * g.KernelArea(), $"{name} sparse backward input vs dense engine");

            Dw.MemSetToZero();
            SparseBackwardWeight();
            e.SubView(0, g.WeightLength).MemSetToZero();
            Dense.BackwardWeight(g, dy, xMasked, e, denseWorkspace);
            device.Synchronize();
            Compare(e.SubView(0, g.WeightLength).GetAsArray1D(), Dw.GetAsArray1D(), (int)g.GemmN, $"{name} sparse backward weight vs dense engine");
        }

        public void Dispose()
        {
            for (int i = buffers.Count - 1; i >= 0; i--)
            {
                buffers[i].Dispose();
            }
        }

        private ArrayView<T> Upload<T>(T[] data)
            where T : unmanaged
            => Own(device.Accelerator.Allocate1D(data)).View;

        private TBuffer Own<TBuffer>(TBuffer buffer)
            where TBuffer : IDisposable
        {
            buffers.Add(buffer);
            return buffer;
        }

        private static T[] NonEmpty<T>(T[] data) => data.Length > 0 ? data : new T[1];
    }
}

/// <summary>Small geometry helpers for the benchmarks.</summary>
internal static class ConvGeometryExtensions
{
    public static int KernelArea(this ConvGeometry g) => g.KernelHeight * g.KernelWidth;
}
