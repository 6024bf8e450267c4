using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Kernels;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// The last mask record as a checkpoint keeps it: the round it was taken after (0 = the initial
/// model) and, per sparse layer in layout order, its top-K bitmap (<see cref="MaskKernels"/>'
/// layout) as base64 of the little-endian ints.
/// </summary>
/// <param name="Round">Round of the record.</param>
/// <param name="Layers">One base64 bitmap per sparse layer.</param>
public sealed record MaskRecord(int Round, string[] Layers);

/// <summary>
/// Mask stability of the global model (ZeroFL Fig. 3), on the device: a record is each sparse
/// layer's top-K positions by magnitude (K = <see cref="SparsitySettings.KeepCount"/> of the
/// layer, ties by lower index: the mask the forward pass uses) as a bitmap; the stability of a
/// layer at a record is |this record's positions AND the previous record's| / K. A record selects
/// and compresses the top-K on the device, marks the bitmap and counts the common bits there; only
/// one partial count per thread comes back per layer. The previous record stays on the device
/// (one bitmap per sparse layer, n / 8 bytes) and goes to the host only for a checkpoint.
/// </summary>
public sealed class MaskRecorder : IDisposable
{
    private readonly ComputeDevice device;
    private readonly IReadOnlyList<ArrayView<float>> weights;
    private readonly int[] keep;
    private readonly MemoryBuffer1D<int, Stride1D.Dense>[] previous;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> current, indices, topKScratch, selectionState;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> values;
    private MaskRecord? saved;

    /// <summary>
    /// Allocates the bitmaps and scratch for the sparse layers whose weights are <paramref name="weights"/>
    /// (views of the global model, read at every record) under <paramref name="settings"/> (sparsity above 0).
    /// </summary>
    public MaskRecorder(ComputeDevice device, IReadOnlyList<ArrayView<float>> weights, SparsitySettings settings)
    {
        settings.Validate();
        if (settings.Sparsity <= 0f)
        {
            throw new ArgumentException("mask records need a sparsity above 0 (a dense model keeps every position)");
        }
        if (weights.Count == 0)
        {
            throw new ArgumentException("mask records need at least one sparse layer");
        }
        this.device = device;
        this.weights = weights;
        keep = weights.Select(w => settings.KeepCount(w.Length)).ToArray();
        var a = device.Accelerator;
        int longest = HostCheck.Count(weights.Max(w => w.Length), "mask recorder");
        previous = weights.Select(w => a.Allocate1D<int>(Math.Max(1, MaskKernels.Words(w.Length)))).ToArray();
        current = a.Allocate1D<int>(Math.Max(1, MaskKernels.Words(longest)));
        indices = a.Allocate1D<int>(Math.Max(1, keep.Max()));
        values = a.Allocate1D<float>(Math.Max(1, keep.Max()));
        topKScratch = a.Allocate1D<int>(device.Kernels.TopK.ScratchLength(longest));
        selectionState = a.Allocate1D<int>(TopKSelection.StateInts);
    }

    /// <summary>Round of the last record, or null before the first (or after <see cref="Forget"/>).</summary>
    public int? Round { get; private set; }

    /// <summary>Device bytes held.</summary>
    public long Bytes => (previous.Sum(b => b.Length) + current.Length + indices.Length + topKScratch.Length + selectionState.Length) * sizeof(int)
        + values.Length * sizeof(float);

    /// <summary>
    /// Records the masks after <paramref name="round"/>: returns each sparse layer's stability since
    /// the previous record, or null when there is none (the first record).
    /// </summary>
    public double[]? Record(int round)
    {
        var k = device.Kernels;
        double[]? stability = Round is null ? null : new double[weights.Count];
        for (int l = 0; l < weights.Count; l++)
        {
            var w = weights[l];
            var selection = k.TopK.Select(w, keep[l], topKScratch.View, selectionState.View);
            int kept = k.TopK.PlanCompress(w, selection, topKScratch.View, knownCount: keep[l]);
            k.TopK.CompressPlanned(w, selection, kept, values.View, indices.View, topKScratch.View);
            k.Masks.Mark(indices.View, kept, w.Length, current.View);
            var words = current.View.SubView(0, MaskKernels.Words(w.Length));
            if (stability is not null)
            {
                stability[l] = (double)k.Masks.CountCommon(previous[l].View, words, w.Length) / keep[l];
            }
            words.CopyTo(previous[l].View.SubView(0, words.Length));
        }
        Round = round;
        saved = null;
        return stability;
    }

    /// <summary>Drops the last record: the next one has no predecessor.</summary>
    public void Forget()
    {
        Round = null;
        saved = null;
    }

    /// <summary>The last record for a checkpoint (read back once per record), or null when there is none.</summary>
    public MaskRecord? Save()
    {
        if (Round is not int round)
        {
            return null;
        }
        if (saved is null || saved.Round != round)
        {
            var layers = new string[weights.Count];
            for (int l = 0; l < weights.Count; l++)
            {
                var bits = new int[MaskKernels.Words(weights[l].Length)];
                device.Kernels.Launch.ReadBack(previous[l].View.SubView(0, bits.Length), bits);
                layers[l] = Convert.ToBase64String(MemoryMarshal.AsBytes(bits.AsSpan()));
            }
            saved = new MaskRecord(round, layers);
        }
        return saved;
    }

    /// <summary>
    /// Takes <paramref name="record"/> (from a checkpoint) as the last record. Returns null when it
    /// was taken, else why not (then there is no last record): a layer count, bitmap length, padding
    /// bit or number of set bits (K) that does not fit this model.
    /// </summary>
    public string? Restore(MaskRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        Forget();
        if (record.Round < 0 || record.Layers is null || record.Layers.Length != weights.Count)
        {
            return $"the mask record holds {record.Layers?.Length ?? 0} layers (round {record.Round}), the model has {weights.Count} sparse layers";
        }
        var decoded = new int[weights.Count][];
        for (int l = 0; l < weights.Count; l++)
        {
            long n = weights[l].Length;
            int words = MaskKernels.Words(n);
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(record.Layers[l] ?? string.Empty);
            }
            catch (FormatException)
            {
                return $"the mask record's layer {l} is not base64";
            }
            if (bytes.Length != 4L * words)
            {
                return $"the mask record's layer {l} has {bytes.Length} bytes, expected {4L * words}";
            }
            var bits = MemoryMarshal.Cast<byte, int>(bytes).ToArray();
            int tail = (int)(n % 32);
            if (tail != 0 && ((uint)bits[^1] >> tail) != 0)
            {
                return $"the mask record's layer {l} sets bits past its {n} entries";
            }
            long set = bits.Sum(b => (long)BitOperations.PopCount((uint)b));
            if (set != keep[l])
            {
                return $"the mask record's layer {l} keeps {set} positions, expected K = {keep[l]}";
            }
            decoded[l] = bits;
        }
        for (int l = 0; l < weights.Count; l++)
        {
            device.Kernels.Launch.Upload((ReadOnlySpan<int>)decoded[l], previous[l].View.SubView(0, decoded[l].Length));
        }
        Round = record.Round;
        saved = record;
        return null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        selectionState.Dispose();
        topKScratch.Dispose();
        values.Dispose();
        indices.Dispose();
        current.Dispose();
        foreach (var buffer in previous)
        {
            buffer.Dispose();
        }
    }
}
