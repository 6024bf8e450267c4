using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Text.Json;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Perf;

/// <summary>
/// The limit the element-wise kernels are judged against: this machine's memory bandwidth, from a
/// STREAM-like copy and triad on the host (one contiguous block per core, Vector256, arrays far
/// larger than the caches), then each element-wise pass of a ResNet-18 step (batch-norm fused with
/// residual and ReLU, forward and backward; the SGD update of the whole model; ReLU) timed on the
/// device and reported as GB/s and as a share of the triad bandwidth. Bytes are the least each pass
/// must move (each tensor read or written once). Every kernel is checked against its plain-loop
/// reference first. One JSON line per measurement; see perf/README.md.
/// </summary>
internal sealed class BandwidthBench(ComputeDevice device, bool quick)
{
    private const int StreamLength = 1 << 25;
    private int Repeats => quick ? 5 : 15;

    /// <summary>STREAM copy (b = a) and triad (a = b + s * c); returns the triad's GB/s.</summary>
    public double Stream()
    {
        var a = new float[StreamLength];
        var b = new float[StreamLength];
        var c = new float[StreamLength];
        Array.Fill(b, 1f);
        Array.Fill(c, 2f);
        double copy = Best(() => Blocks(StreamLength, (start, end) => Copy(b, a, start, end)));
        double triad = Best(() => Blocks(StreamLength, (start, end) => Triad(a, b, c, 3f, start, end)));
        if (a[StreamLength - 1] != 7f)
        {
            throw new ValidationException($"stream triad: expected 7, got {a[StreamLength - 1]}");
        }
        double copyGbs = 2.0 * StreamLength * sizeof(float) / copy / 1e9;
        double triadGbs = 3.0 * StreamLength * sizeof(float) / triad / 1e9;
        Print(new Dictionary<string, object>
        {
            ["name"] = "stream",
            ["floats"] = StreamLength,
            ["threads"] = Environment.ProcessorCount,
            ["copy_gbs"] = Math.Round(copyGbs, 1),
            ["triad_gbs"] = Math.Round(triadGbs, 1),
        });
        return triadGbs;
    }

    /// <summary>The element-wise passes of a ResNet-18 step at batch 32, as shares of <paramref name="triadGbs"/>.</summary>
    public void ElementwisePasses(double triadGbs)
    {
        var acc = device.Accelerator;
        var k = device.Kernels;
        foreach (var (layer, channels, size) in new[] { ("layer1", 64, 32), ("layer3", 256, 8) })
        {
            const int batch = 32;
            int spatial = size * size;
            int n = batch * channels * spatial;
            var random = new Random(5);
            float[] Host(int length) => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var xHost = Host(n);
            var residualHost = Host(n);
            var gammaHost = Host(channels).Select(v => 1f + 0.5f * v).ToArray();
            var betaHost = Host(channels);
            using var x = acc.Allocate1D(xHost);
            using var residual = acc.Allocate1D(residualHost);
            using var y = acc.Allocate1D<float>(n);
            using var dy = acc.Allocate1D(Host(n));
            using var dx = acc.Allocate1D<float>(n);
            using var dResidual = acc.Allocate1D<float>(n);
            using var gamma = acc.Allocate1D(gammaHost);
            using var beta = acc.Allocate1D(betaHost);
            using var mean = acc.Allocate1D<float>(channels);
            using var invStd = acc.Allocate1D<float>(channels);
            using var runningMean = acc.Allocate1D<float>(channels);
            using var runningVar = acc.Allocate1D(Enumerable.Repeat(1f, channels).ToArray());
            using var dGamma = acc.Allocate1D<float>(channels);
            using var dBeta = acc.Allocate1D<float>(channels);
            var epilogue = new BatchNormEpilogue(residual.View, true);
            void Forward() => k.BatchNorm.ForwardTraining(x.View, y.View, gamma.View, beta.View, mean.View, invStd.View, runningMean.View, runningVar.View,
                batch, channels, spatial, 0.1f, 1e-5f, epilogue);
            void Backward() => k.BatchNorm.Backward(x.View, y.View, dy.View, gamma.View, mean.View, invStd.View, dx.View, true, dGamma.View, dBeta.View,
                new BatchNormEpilogue(dResidual.View, true), true, batch, channels, spatial);

            Forward();
            device.Synchronize();
            var expected = new float[n];
            BatchNormReference.ForwardTraining(xHost, expected, gammaHost, betaHost, new float[channels], new float[channels], new float[channels],
                Enumerable.Repeat(1f, channels).ToArray(), batch, channels, spatial, 0.1f, 1e-5f);
            var actual = y.GetAsArray1D();
            for (int i = 0; i < n; i += 97)
            {
                float want = MathF.Max(expected[i] + residualHost[i], 0f);
                if (MathF.Abs(actual[i] - want) > 1e-3f * (1 + MathF.Abs(want)))
                {
                    throw new ValidationException($"batchnorm {layer} forward: element {i} is {actual[i]}, reference {want}");
                }
            }
            Report($"batchnorm_relu_add_forward_{layer}", n, 3, DeviceBest(Forward), triadGbs);
            Report($"batchnorm_relu_add_backward_{layer}", n, 5, DeviceBest(Backward), triadGbs);
            Report($"relu_forward_{layer}", n, 2, DeviceBest(() => k.Activation.ReluForward(x.View, y.View)), triadGbs);
        }

        // SGD with momentum and weight decay over ResNet-18's 11.2M parameters: read p, g, m; write p, m.
        const int parameters = 11_173_962;
        using var p = acc.Allocate1D<float>(parameters);
        using var g = acc.Allocate1D<float>(parameters);
        using var m = acc.Allocate1D<float>(parameters);
        k.Launch.Zero<float>(p.View);
        k.Launch.Zero<float>(g.View);
        k.Launch.Zero<float>(m.View);
        Report("sgd_momentum_resnet18", parameters, 5, DeviceBest(() => k.Sgd.Step(p.View, g.View, m.View, 0.01f, 0.9f, 5e-4f)), triadGbs);
    }

    private void Report(string name, long elements, int tensorsMoved, double seconds, double triadGbs)
    {
        double bytes = (double)elements * sizeof(float) * tensorsMoved;
        double gbs = bytes / seconds / 1e9;
        Print(new Dictionary<string, object>
        {
            ["name"] = name,
            ["elements"] = elements,
            ["bytes"] = bytes,
            ["ms"] = Math.Round(seconds * 1e3, 3),
            ["gbs"] = Math.Round(gbs, 1),
            ["share_of_triad"] = Math.Round(gbs / triadGbs, 2),
            ["device"] = device.Description,
        });
    }

    /// <summary>Best seconds of a device launch over the repeats (each synchronised), after <see cref="Best"/>'s warm-up.</summary>
    private double DeviceBest(Action launch) =>
        Best(() =>
        {
            launch();
            device.Synchronize();
        });

    private double Best(Action action)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < Repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }

    /// <summary>Runs <paramref name="body"/> on one contiguous block of [0, n) per core.</summary>
    private static void Blocks(int n, Action<int, int> body)
    {
        int threads = Environment.ProcessorCount;
        int block = (n + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => body(t * block, Math.Min(n, (t + 1) * block)));
    }

    private static unsafe void Copy(float[] source, float[] target, int start, int end)
    {
        fixed (float* s = source, d = target)
        {
            int i = start;
            for (; i + 8 <= end; i += 8)
            {
                Vector256.Store(Vector256.Load(s + i), d + i);
            }
            for (; i < end; i++)
            {
                d[i] = s[i];
            }
        }
    }

    private static unsafe void Triad(float[] a, float[] b, float[] c, float scalar, int start, int end)
    {
        var vs = Vector256.Create(scalar);
        fixed (float* pa = a, pb = b, pc = c)
        {
            int i = start;
            for (; i + 8 <= end; i += 8)
            {
                Vector256.Store(Vector256.Load(pb + i) + vs * Vector256.Load(pc + i), pa + i);
            }
            for (; i < end; i++)
            {
                pa[i] = pb[i] + scalar * pc[i];
            }
        }
    }

    private static void Print(Dictionary<string, object> row) => Console.WriteLine(JsonSerializer.Serialize(row));
}
