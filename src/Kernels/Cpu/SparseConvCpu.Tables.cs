using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ZeroFL.Kernels;

// Per-thread state: the tables cached per plan (gather, backward weight) and the
// thread-local workspace of growable pinned buffers.
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ per-thread state

    private static T* Ptr<T>(T[] array)
        where T : unmanaged
        => (T* )Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));

    /// <summary>Test hook: the channel windows the CPU gather uses for plan <paramref name="p"/> (1: unblocked).</summary>
    internal static int GatherWindows(SparseConvPlan p) => new GatherTables(p).Windows;

    /// <summary>Cached per-plan tables of a gather pass.</summary>
    private sealed class GatherTables
    {
        public GatherTables(SparseConvPlan p)
        {
            var strips = SparseConvStrips.Build(p);
            PhaseCount = strips.Phases;
            PhaseRows = p.PhaseRows;
            StripStart = Pinned(strips.Start);
            StripOutput = Pinned(strips.Output);
            Contiguous = Pinned(strips.Contiguous);
            Paired = Pinned(strips.Paired);
            int k = p.WeightColumns;
            ColumnShift = GC.AllocateUninitializedArray<int>(k, pinned: true);
            ColumnBucket = GC.AllocateUninitializedArray<int>(k, pinned: true);
            int area = p.KernelArea;
            int s = p.Stride;
            int bi = p.BatchInner;
            for (int col = 0; col < k; col++)
            {
                int ci = col / area;
                int kh = col % area / p.KernelWidth;
                int kw = col % p.KernelWidth;
                if (p.Pass == SparseConvPlan.ForwardPass)
                {
                    ColumnShift[col] = ((ci * s + kh % s) * s + kw % s) * p.ChannelStride + (kh / s * p.PackedWidth + kw / s) * bi;
                    ColumnBucket[col] = ci;
                    continue;
                }
                // Backward input: dx row i*S + ph reads dy row i + (ph + P - kh) / S, for ph = (kh - P) mod S.
                int ph = ((kh - p.Padding) % s + s) % s;
                int pw = ((kw - p.Padding) % s + s) % s;
                if (ph >= p.PhaseRows || pw >= p.PhaseCols)
                {
                    ColumnShift[col] = 0;
                    ColumnBucket[col] = -1;
                    continue;
                }
                int du = (ph + p.Padding - kh) / s + p.PadTop;
                int dv = (pw + p.Padding - kw) / s + p.PadLeft;
                ColumnShift[col] = (du * p.PackedWidth + dv) * bi;
                ColumnBucket[col] = ci * strips.Phases + ph * p.PhaseCols + pw;
            }
            WindowChannels = Math.Max(1, p.SourceChannels);
            Windows = 1;
            // A strided forward packs each channel as stride^2 phase planes, one after another.
            bool strided = p.Stride > 1 && p.Pass == SparseConvPlan.ForwardPass;
            ChannelStride = strided ? p.ChannelStride * s * s : p.ChannelStride;
            if (p.Pass != SparseConvPlan.BackwardWeightPass && StripStart.Length > 1)
            {
                int footprint = ChannelFootprint(p, ColumnShift, StripStart[1] - StripStart[0]);
                WindowChannels = Math.Clamp(WindowFloats / footprint, 1, Math.Max(1, p.SourceChannels));
                Windows = (p.SourceChannels + WindowChannels - 1) / WindowChannels;
            }
        }

        /// <summary>Floats per source channel of the packed operand (all its phase planes).</summary>
        public int ChannelStride { get; }

        /// <summary>
        /// Stride 1: source channels per window of the blocked gather, so that a window's slice of a
        /// pair of runs' operand (the union over taps of the 64 + gap floats each reads) fills about
        /// <see cref="WindowFloats"/>; <see cref="Windows"/> windows cover the channels (1: unblocked).
        /// </summary>
        public int WindowChannels { get; }

        public int Windows { get; }

        /// <summary>
        /// Footprint of one channel window's operand slice in floats (a 32 KB L1). Twice the earlier
        /// 16 KB: fewer windows, so fewer reloads of each list's 64 sums per pair of runs, which
        /// gained 7-10% on layers 3-4 at density 0.05 and 2-8% at 0.1 (interleaved A/B); 64 KB
        /// was slower at 0.1.
        /// </summary>
        private const int WindowFloats = 8192;

        private static int ChannelFootprint(SparseConvPlan p, int[] columnShift, int second)
        {
            // Intervals [shift, shift + second + 32) of channel 0's taps, merged.
            var starts = new int[p.KernelArea];
            for (int tap = 0; tap < starts.Length; tap++)
            {
                starts[tap] = columnShift[tap];
            }
            Array.Sort(starts);
            int length = second + SparseConvStrips.Length;
            long covered = 0, end = long.MinValue;
            foreach (int start in starts)
            {
                long from = Math.Max(start, end);
                long to = (long)start + length;
                if (to > from)
                {
                    covered += to - from;
                    end = to;
                }
            }
            return (int)Math.Max(1, covered);
        }

        /// <summary>Output phases (1, or the stride's residues for backward input).</summary>
        public int PhaseCount { get; }

        public int PhaseRows { get; }

        public int[] StripStart { get; }

        public int[] StripOutput { get; }

        public byte[] Contiguous { get; }

        public byte[] Paired { get; }

        /// <summary>Shift of each weight column in the packed layout (backward input: without the dy channel term).</summary>
        public int[] ColumnShift { get; }

        /// <summary>
        /// The (source-side channel, output phase) bucket of each weight column: forward, its input
        /// channel; backward input, input channel * PhaseCount + phase, or -1 when it reaches no input.
        /// </summary>
        public int[] ColumnBucket { get; }

        private static T[] Pinned<T>(List<T> list)
            where T : unmanaged
        {
            var array = GC.AllocateUninitializedArray<T>(list.Count, pinned: true);
            list.CopyTo(array);
            return array;
        }
    }

    /// <summary>Cached per-plan tables of backward weight.</summary>
    private sealed class WeightTables
    {
        public WeightTables(SparseConvPlan p)
        {
            int area = p.KernelArea;
            int plane = p.InHeight * p.InWidth;
            PositionTap = GC.AllocateUninitializedArray<int>(Math.Max(1, plane * area), pinned: true);
            int s = p.Stride;
            for (int ih = 0; ih < p.InHeight; ih++)
            {
                for (int iw = 0; iw < p.InWidth; iw++)
                {
                    for (int kh = 0; kh < p.KernelHeight; kh++)
                    {
                        for (int kw = 0; kw < p.KernelWidth; kw++)
                        {
                            int th = ih + p.Padding - kh;
                            int tw = iw + p.Padding - kw;
                            int oh = th / s;
                            int ow = tw / s;
                            bool valid = th >= 0 && tw >= 0 && th % s == 0 && tw % s == 0 && oh < p.OutHeight && ow < p.OutWidth;
                            PositionTap[(ih * p.InWidth + iw) * area + kh * p.KernelWidth + kw] =
                                valid ? (oh * p.OutWidth + ow) * p.RowPitch : -1;
                        }
                    }
                }
            }

            // Position classes: an input position whose every tap lands inside dy is "interior"; its
            // taps are those with kh = (ih + P) mod S (mod S), and each meets the dy row
            // base(ih, iw) + delta(tap), the delta depending only on the class (ih + P, iw + P) mod S.
            int classes = s * s;
            PositionClass = GC.AllocateUninitializedArray<int>(Math.Max(1, plane), pinned: true);
            PositionBase = GC.AllocateUninitializedArray<int>(Math.Max(1, plane), pinned: true);
            ClassTapStart = GC.AllocateUninitializedArray<int>(classes + 1, pinned: true);
            var taps = new List<int>();
            var deltas = new List<int>();
            for (int c = 0; c < classes; c++)
            {
                ClassTapStart[c] = taps.Count;
                int rh = c / s;
                int rw = c % s;
                for (int kh = rh; kh < p.KernelHeight; kh += s)
                {
                    for (int kw = rw; kw < p.KernelWidth; kw += s)
                    {
                        taps.Add(kh * p.KernelWidth + kw);
                        deltas.Add(-((kh - rh) / s * p.OutWidth + (kw - rw) / s) * p.RowPitch);
                    }
                }
            }
            ClassTapStart[classes] = taps.Count;
            ClassTap = GC.AllocateUninitializedArray<int>(Math.Max(1, taps.Count), pinned: true);
            ClassDelta = GC.AllocateUninitializedArray<int>(Math.Max(1, taps.Count), pinned: true);
            taps.CopyTo(ClassTap);
            deltas.CopyTo(ClassDelta);
            for (int ih = 0; ih < p.InHeight; ih++)
            {
                for (int iw = 0; iw < p.InWidth; iw++)
                {
                    int rh = (ih + p.Padding) % s;
                    int rw = (iw + p.Padding) % s;
                    int ohBase = (ih + p.Padding - rh) / s;
                    int owBase = (iw + p.Padding - rw) / s;
                    bool interior = true;
                    for (int kh = rh; kh < p.KernelHeight && interior; kh += s)
                    {
                        for (int kw = rw; kw < p.KernelWidth && interior; kw += s)
                        {
                            int oh = ohBase - (kh - rh) / s;
                            int ow = owBase - (kw - rw) / s;
                            interior = oh >= 0 && oh < p.OutHeight && ow >= 0 && ow < p.OutWidth;
                        }
                    }
                    int pos = ih * p.InWidth + iw;
                    PositionClass[pos] = interior ? rh * s + rw : -1;
                    PositionBase[pos] = interior ? (ohBase * p.OutWidth + owBase) * p.RowPitch : 0;
                }
            }
        }

        /// <summary>For input position (ih, iw) and tap (kh, kw): the dy row offset (oh, ow) * RowPitch it meets, or -1.</summary>
        public int[] PositionTap { get; }

        /// <summary>Class (ih + P) mod S * S + (iw + P) mod S of an interior input position, -1 at the border.</summary>
        public int[] PositionClass { get; }

        /// <summary>Row offset of an interior position's class base (ohBase, owBase) * RowPitch.</summary>
        public int[] PositionBase { get; }

        /// <summary>Class c owns taps ClassTapStart[c] .. ClassTapStart[c + 1] - 1 of <see cref="ClassTap"/>.</summary>
        public int[] ClassTapStart { get; }

        /// <summary>Tap index kh * KW + kw of each class tap.</summary>
        public int[] ClassTap { get; }

        /// <summary>Offset of each class tap's dy row relative to the position's base.</summary>
        public int[] ClassDelta { get; }
    }

    /// <summary>Thread-local tables (cached per plan) and growable pinned buffers.</summary>
    private sealed class Workspace
    {
        private const int MaxCachedPlans = 64;
        private readonly Dictionary<SparseConvPlan, GatherTables> gather = [];
        private readonly Dictionary<SparseConvPlan, WeightTables> weight = [];
        private readonly float[] tile = GC.AllocateUninitializedArray<float>(64, pinned: true);
        private float[] phaseTiles = [];

        public int[] RowStart = [];
        public int[] WindowStart = [];
        public float[] BlockTile = [];
        public float[] ImagePack = [];
        public int[] Cursor = [];
        public int[] ColumnCount = [];
        public int[] ListOffset = [];
        public float[] ListWeight = [];
        public int[] EntryPosition = [];
        public int[] EntryRow = [];
        public float[] EntryValue = [];
        public float[] Accumulator = [];
        public int[] ClassOffset = [];
        public float[] ClassWeight = [];

        public float* Tile => Ptr(tile);

        /// <summary>64 floats per output phase.</summary>
        public float* Tiles(int phases) => Floats(ref phaseTiles, 64 * phases);

        public GatherTables Gather(SparseConvPlan p)
        {
            if (!gather.TryGetValue(p, out var tables))
            {
                if (gather.Count >= MaxCachedPlans)
                {
                    gather.Clear();
                }
                tables = new GatherTables(p);
                gather[p] = tables;
            }
            return tables;
        }

        public WeightTables Weight(SparseConvPlan p)
        {
            if (!weight.TryGetValue(p, out var tables))
            {
                if (weight.Count >= MaxCachedPlans)
                {
                    weight.Clear();
                }
                tables = new WeightTables(p);
                weight[p] = tables;
            }
            return tables;
        }

        public int* Ints(ref int[] buffer, int length)
        {
            if (buffer.Length < length || buffer.Length == 0)
            {
                buffer = GC.AllocateUninitializedArray<int>(Math.Max(16, length + length / 4), pinned: true);
            }
            return Ptr(buffer);
        }

        /// <summary>The image-major passes' thread-local buffer of one image's packed operand, its slack zeroed.</summary>
        public float* ImageOperand(SparseConvPlan p)
        {
            float* local = Floats(ref ImagePack, p.PackedLength + SparseConvPlan.Slack);
            Clear(local + p.PackedLength, SparseConvPlan.Slack);
            return local;
        }

        public float* Floats(ref float[] buffer, int length)
        {
            if (buffer.Length < length || buffer.Length == 0)
            {
                buffer = GC.AllocateUninitializedArray<float>(Math.Max(16, length + length / 4), pinned: true);
            }
            return Ptr(buffer);
        }
    }
}
