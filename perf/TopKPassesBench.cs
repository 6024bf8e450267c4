using System.Diagnostics;
using System.Text.Json;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Perf;

/// <summary>
/// SWAT's per-layer top-K work, sub-pass by sub-pass, on the shapes of ResNet-18's sparse layers
/// (batch 32): the weights' selection and CSR encode, the input's selection, compress, index pack
/// and (backward) expand, as <c>Ops.SwatConv2d</c> calls them. Weights are normal with He scale,
/// inputs ReLU of a normal (half exact zeros, as after batch-norm and ReLU). Each selection is first
/// checked against the sort-based reference (threshold and ties). One JSON line per layer shape.
/// </summary>
internal sealed class TopKPassesBench(ComputeDevice device, bool quick)
{
    /// <summary>Times every sub-pass of one sparse layer of weight [cout, cin, kh, kw] and input [batch, cin, h, w].</summary>
    public void Layer(string name, int batch, int cin, int h, int w, int cout, int kernel, float density)
    {
        int repeats = quick ? 9 : 31;
        var random = new Random(11);
        int wLength = cout * cin * kernel * kernel, xLength = batch * cin * h * w;
        float scale = MathF.Sqrt(2f / (cin * kernel * kernel));
        var wHost = new float[wLength];
        var xHost = new float[xLength];
        for (int i = 0; i < wLength; i++)
        {
            wHost[i] = scale * Normal(random);
        }
        for (int i = 0; i < xLength; i++)
        {
            xHost[i] = Math.Max(0f, Normal(random));
        }
        var a = device.Accelerator;
        var topK = device.Kernels.TopK;
        using var wBuffer = a.Allocate1D(wHost);
        using var xBuffer = a.Allocate1D(xHost);
        using var workspace = new Workspace(device);
        var scratch = workspace.TopKScratch(topK.ScratchLength(Math.Max(wLength, xLength)));
        using var wState = a.Allocate1D<int>(TopKSelection.StateInts);
        using var xState = a.Allocate1D<int>(TopKSelection.StateInts);
        int wK = TopKKernels.CountFor(wLength, density), xK = TopKKernels.CountFor(xLength, density);
        Check(name + " weights", wHost, wK, topK.OnHost(topK.Select(wBuffer.View, wK, scratch, wState.View)));
        Check(name + " input", xHost, xK, topK.OnHost(topK.Select(xBuffer.View, xK, scratch, xState.View)));

        int longestRow = 0, longestChunk = 0;
        TopKSelection wSelection = default, xSelection = default;
        CompressedEntries kept = default;
        ArrayView<int> packed = default, table = default;
        var times = new Dictionary<string, List<double>>();
        void Time(string what, Action action)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            device.Synchronize();
            if (!times.TryGetValue(what, out var list))
            {
                times[what] = list = [];
            }
            list.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        for (int r = 0; r < repeats + 1; r++)
        {
            workspace.Reset();
            Time("w_select", () => wSelection = topK.Select(wBuffer.View, wK, scratch, wState.View));
            Time("w_csr", () => device.Kernels.Csr.EncodeTopK(wBuffer.View, wSelection, cout, cin * kernel * kernel, wSelection.Kept, workspace, ref longestRow));
            Time("x_select", () => xSelection = topK.Select(xBuffer.View, xK, scratch, xState.View));
            Time("x_compress", () => kept = topK.CompressTopK(xBuffer.View, xSelection, xSelection.Kept, scratch, workspace, ref longestChunk));
            Time("x_pack", () =>
            {
                packed = workspace.Ints.Allocate(Math.Max(1, IndexPackKernels.PackedLength(kept.Count)));
                table = workspace.Ints.Allocate(IndexPackKernels.TableLength(xLength));
                device.Kernels.IndexPack.Pack(kept.Indices, kept.Count, xLength, packed, table);
            });
            Time("x_expand", () => device.Kernels.IndexPack.Expand(packed, table, kept.Count, xLength, workspace.IntScratch(Math.Max(1, kept.Count))));
            if (r == 0)
            {
                times.Clear(); // warm-up round
            }
        }
        var line = new Dictionary<string, object>
        {
            ["name"] = $"topk_passes_{name}_d{density}",
            ["weights"] = wLength,
            ["input"] = xLength,
        };
        double sum = 0;
        foreach (var (what, list) in times)
        {
            list.Sort();
            double median = list[list.Count / 2];
            sum += median;
            line[what + "_ms"] = Math.Round(median, 3);
        }
        line["sum_ms"] = Math.Round(sum, 3);
        line["device"] = device.Description;
        Console.WriteLine(JsonSerializer.Serialize(line));
    }

    /// <summary>The sparse layers of ResNet-18 at batch 32 on 32x32 input: (name, cin, h, w, cout, count in the model).</summary>
    public static IEnumerable<(string Name, int Cin, int Size, int Cout, int Count)> ResNet18Layers()
    {
        yield return ("layer1", 64, 32, 64, 4);
        yield return ("layer2_0_conv1", 64, 32, 128, 1);
        yield return ("layer2", 128, 16, 128, 3);
        yield return ("layer3_0_conv1", 128, 16, 256, 1);
        yield return ("layer3", 256, 8, 256, 3);
        yield return ("layer4_0_conv1", 256, 8, 512, 1);
        yield return ("layer4", 512, 4, 512, 3);
    }

    private static void Check(string name, float[] data, int k, TopKSelection selection)
    {
        var kept = TopKReference.KeptMask(data, k);
        uint threshold = uint.MaxValue;
        for (int i = 0; i < data.Length; i++)
        {
            if (kept[i])
            {
                threshold = Math.Min(threshold, BitConverter.SingleToUInt32Bits(data[i]) & TopKKernels.MagnitudeMask);
            }
        }
        if (selection.ThresholdBits != threshold)
        {
            throw new ValidationException($"{name}: threshold bits {selection.ThresholdBits:X8}, the reference's {threshold:X8}");
        }
    }

    private static float Normal(Random random)
    {
        double u = 1 - random.NextDouble(), v = random.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v));
    }
}
