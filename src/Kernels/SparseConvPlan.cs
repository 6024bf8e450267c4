namespace ZeroFL.Kernels;

/// <summary>
/// Kernel-side description of one pass of <see cref="SparseConvKernels"/>: the convolution
/// geometry plus the layout of the "packed" copy of the dense operand that the CPU path gathers from.
/// <para>
/// Packed layout (forward: x; backward input: dy): <c>[channel][rowPhase][colPhase][batchOuter][u][v][batchInner]</c>,
/// element = source[b = batchOuter * BatchInner + batchInner, channel, u * Phases + rowPhase - PadTop,
/// v * Phases + colPhase - PadLeft], zero outside the source (padding, batches past the end). With
/// that layout every kernel tap is a constant shift: the output position (b, i, j) of a pass has
/// the packed index <c>q = ((batchOuter * PackedHeight + i) * PackedWidth + j) * BatchInner + batchInner</c>
/// and the tap reads <c>packed[shift(tap) + q]</c>, so the CPU kernels run 8-wide FMAs over runs of
/// consecutive q with no bounds checks. BatchInner is 1 (runs along image rows) or 8 (runs across
/// batches, for small images and linear layers), whichever leaves fewer idle lanes.
/// </para>
/// Backward weight packs dy transposed instead: <c>[batch, outH, outW][RowPitch]</c> (output channels contiguous).
/// </summary>
internal readonly record struct SparseConvPlan
{
    /// <summary>Forward pass.</summary>
    public const int ForwardPass = 0;

    /// <summary>Input-gradient pass.</summary>
    public const int BackwardInputPass = 1;

    /// <summary>Weight-gradient pass.</summary>
    public const int BackwardWeightPass = 2;

    /// <summary>Zeroed floats after the packed data, so that the idle lanes of a run never read past the scratch.</summary>
    public const int Slack = 64;

    public int Pass { get; init; }

    /// <summary>
    /// Backward input on the CPU gather: 1 when the pass overwrites dx (every element written, no
    /// read) instead of adding into it (0). Set per call by <see cref="SparseConvKernels.BackwardInput"/>.
    /// </summary>
    public int Overwrite { get; init; }

    public int Batch { get; init; }

    public int InChannels { get; init; }

    public int InHeight { get; init; }

    public int InWidth { get; init; }

    public int OutChannels { get; init; }

    public int KernelHeight { get; init; }

    public int KernelWidth { get; init; }

    public int Stride { get; init; }

    public int Padding { get; init; }

    public int OutHeight { get; init; }

    public int OutWidth { get; init; }

    /// <summary>Channels of the packed source tensor (x: InChannels, dy: OutChannels).</summary>
    public int SourceChannels { get; init; }

    public int SourceHeight { get; init; }

    public int SourceWidth { get; init; }

    /// <summary>Row and column phases of the packed layout (the stride for forward, else 1).</summary>
    public int Phases { get; init; }

    public int PadTop { get; init; }

    public int PadLeft { get; init; }

    public int PackedHeight { get; init; }

    public int PackedWidth { get; init; }

    public int BatchInner { get; init; }

    public int BatchOuter { get; init; }

    /// <summary>Floats per (channel, rowPhase, colPhase) block of the packed layout.</summary>
    public int ChannelStride { get; init; }

    /// <summary>Floats of packed data (the scratch also holds <see cref="Slack"/> zeros after them).</summary>
    public int PackedLength { get; init; }

    /// <summary>Backward weight: floats per row of the transposed dy (OutChannels rounded up to 8).</summary>
    public int RowPitch { get; init; }

    /// <summary>
    /// The number of per-thread private copies of the result that follow the packed operand in the
    /// scratch and a second launch sums (0: none): dx of a linear layer's backward input
    /// ([InChannels, BatchOuter * 8]), or dw of an image-major backward weight (see <see cref="Images"/>).
    /// </summary>
    public int PrivateCopies { get; init; }

    /// <summary>
    /// Image-major pass (CPU): when positive, the plan describes one image (<see cref="Batch"/> 1)
    /// and the pass runs it over this many images, each thread packing the images it computes into a
    /// thread-local buffer (one image's operand, which stays in L2) instead of reading a batch-sized
    /// packed copy from memory. Forward and backward input (runs along image rows): threads take
    /// units of the (image, pair of runs) work from a counter (the first float of the device
    /// scratch, which nothing else uses) and gather every output row from the image. Backward
    /// weight: each thread takes a share of the images, transposes each one's dy and accumulates
    /// every input channel into its private dw copy in the scratch (<see cref="PrivateCopies"/>), which a second launch sums into dw. 0: the whole
    /// batch is packed into the scratch first and threads own output rows (input channels).
    /// </summary>
    public int Images { get; init; }

    /// <summary>The image-major form of a one-image gather plan (see <see cref="Images"/>) for <paramref name="images"/> images.</summary>
    public static SparseConvPlan ByImage(ConvGeometry g, int pass, int images)
    {
        var one = g with { Batch = 1 };
        var plan = pass == ForwardPass ? Forward(one, 1) : BackwardInput(one, 1);
        return plan with { Images = images };
    }

    /// <summary>The image-major backward-weight plan (see <see cref="Images"/>) with one private dw copy per thread.</summary>
    public static SparseConvPlan BackwardWeightByImage(ConvGeometry g, int threads) =>
        BackwardWeight(g with { Batch = 1 }) with { Images = g.Batch, PrivateCopies = threads };

    /// <summary>Offset of the private copies in the scratch.</summary>
    public int PrivateOffset => PackedLength + Slack;

    /// <summary>
    /// Rows of one private copy: input channels (linear backward input: dx transposed, [InChannels,
    /// padded batch]) or weight columns (backward weight: dw transposed, [InChannels * KH * KW, RowPitch]).
    /// </summary>
    public int CopyRows => Pass == BackwardWeightPass ? WeightColumns : InChannels;

    /// <summary>Floats per row of a private copy: the padded batch, or <see cref="RowPitch"/>.</summary>
    public int CopyRowLength => Pass == BackwardWeightPass ? RowPitch : BatchOuter * BatchInner;

    /// <summary>Leading floats of each copy row that are added into the result: the batch, or the output channels.</summary>
    public int CopyColumns => Pass == BackwardWeightPass ? OutChannels : Batch;

    /// <summary>Floats of one private copy.</summary>
    public int PrivateLength => CopyRows * CopyRowLength;

    /// <summary>Floats of scratch the pass needs.</summary>
    public long ScratchLength => (long)PackedLength + Slack + (long)PrivateCopies * PrivateLength;

    /// <summary>A linear layer: 1x1 kernel, stride 1, no padding, 1x1 images.</summary>
    public bool IsLinear => KernelHeight == 1 && KernelWidth == 1 && Stride == 1 && Padding == 0 && InHeight == 1 && InWidth == 1;

    public int KernelArea => KernelHeight * KernelWidth;

    /// <summary>Columns of the weight matrix: InChannels * KernelHeight * KernelWidth.</summary>
    public int WeightColumns => InChannels * KernelHeight * KernelWidth;

    /// <summary>Output phases of a gather pass: 1 for forward; (row, column) residues mod Stride for backward input.</summary>
    public int PhaseRows => Pass == ForwardPass ? 1 : Math.Min(Stride, InHeight);

    public int PhaseCols => Pass == ForwardPass ? 1 : Math.Min(Stride, InWidth);

    /// <summary>Rows of the pass's output matrix: output channels (forward) or input channels (backward input).</summary>
    public int OutputRows => Pass == ForwardPass ? OutChannels : InChannels;

    /// <summary>Floats per output channel plane of the pass's output tensor.</summary>
    public int OutputPlane => Pass == ForwardPass ? OutHeight * OutWidth : InHeight * InWidth;

    /// <summary>Output rows i of phase row ph (forward: OutHeight).</summary>
    public int PhaseHeight(int ph) => Pass == ForwardPass ? OutHeight : (InHeight - ph + Stride - 1) / Stride;

    /// <summary>Output columns j of phase column pw (forward: OutWidth).</summary>
    public int PhaseWidth(int pw) => Pass == ForwardPass ? OutWidth : (InWidth - pw + Stride - 1) / Stride;

    /// <summary>Offset of output (b, i, j) of phase (ph, pw) in the output tensor, without the channel term.</summary>
    public int OutputOffset(int b, int i, int j, int ph, int pw)
    {
        if (Pass == ForwardPass)
        {
            return (b * OutChannels * OutHeight + i) * OutWidth + j;
        }
        return (b * InChannels * InHeight + i * Stride + ph) * InWidth + j * Stride + pw;
    }

    /// <summary>The forward plan for <paramref name="g"/> with the given batch blocking (1 or 8).</summary>
    public static SparseConvPlan Forward(ConvGeometry g, int batchInner)
    {
        int s = g.Stride;
        int hu = g.OutHeight + (g.KernelHeight - 1) / s;
        int wu = g.OutWidth + (g.KernelWidth - 1) / s;
        int bo = (g.Batch + batchInner - 1) / batchInner;
        long channelStride = (long)bo * hu * wu * batchInner;
        long packed = channelStride * g.InChannels * s * s;
        return Base(g, ForwardPass) with
        {
            SourceChannels = g.InChannels,
            SourceHeight = g.InHeight,
            SourceWidth = g.InWidth,
            Phases = s,
            PadTop = g.Padding,
            PadLeft = g.Padding,
            PackedHeight = hu,
            PackedWidth = wu,
            BatchInner = batchInner,
            BatchOuter = bo,
            ChannelStride = CheckedLength(channelStride, g),
            PackedLength = CheckedLength(packed, g),
        };
    }

    /// <summary>The backward-input plan for <paramref name="g"/> with the given batch blocking (1 or 8).</summary>
    public static SparseConvPlan BackwardInput(ConvGeometry g, int batchInner)
    {
        int s = g.Stride;
        int padTop = Math.Max(0, (g.KernelHeight - 1 - g.Padding + s - 1) / s);
        int padLeft = Math.Max(0, (g.KernelWidth - 1 - g.Padding + s - 1) / s);
        int hu = PackedExtent(g.InHeight, g.KernelHeight, s, g.Padding, padTop);
        int wu = PackedExtent(g.InWidth, g.KernelWidth, s, g.Padding, padLeft);
        int bo = (g.Batch + batchInner - 1) / batchInner;
        long channelStride = (long)bo * hu * wu * batchInner;
        long packed = channelStride * g.OutChannels;
        return Base(g, BackwardInputPass) with
        {
            SourceChannels = g.OutChannels,
            SourceHeight = g.OutHeight,
            SourceWidth = g.OutWidth,
            Phases = 1,
            PadTop = padTop,
            PadLeft = padLeft,
            PackedHeight = hu,
            PackedWidth = wu,
            BatchInner = batchInner,
            BatchOuter = bo,
            ChannelStride = CheckedLength(channelStride, g),
            PackedLength = CheckedLength(packed, g),
        };
    }

    /// <summary>
    /// The backward-input plan of a linear layer on the CPU: dy packed as [OutChannels, batch padded
    /// to 8], followed by <paramref name="copies"/> private dx copies that the threads scatter into
    /// and a second launch sums.
    /// </summary>
    public static SparseConvPlan BackwardInputLinear(ConvGeometry g, int copies)
    {
        var plan = BackwardInput(g, 8) with { PrivateCopies = copies };
        if (plan.ScratchLength > int.MaxValue)
        {
            throw new ArgumentException($"sparse convolution {g}: the private input-gradient copies exceed 32-bit element counts");
        }
        return plan;
    }

    /// <summary>The backward-weight plan: dy transposed to [batch * outH * outW, RowPitch].</summary>
    public static SparseConvPlan BackwardWeight(ConvGeometry g)
    {
        int pitch = (g.OutChannels + 7) / 8 * 8;
        long packed = (long)g.Batch * g.OutHeight * g.OutWidth * pitch;
        return Base(g, BackwardWeightPass) with
        {
            SourceChannels = g.OutChannels,
            SourceHeight = g.OutHeight,
            SourceWidth = g.OutWidth,
            Phases = 1,
            BatchInner = 1,
            BatchOuter = g.Batch,
            RowPitch = pitch,
            PackedLength = CheckedLength(packed, g),
        };
    }

    /// <summary>The constructor values: the record's default ToString would list every field.</summary>
    public override string ToString() =>
        $"SparseConvPlan(pass {Pass}, batch {Batch}, input {InChannels}x{InHeight}x{InWidth}, output {OutChannels}x{OutHeight}x{OutWidth}, kernel {KernelHeight}x{KernelWidth}, stride {Stride}, padding {Padding}, batch inner {BatchInner}, images {Images})";

    private static SparseConvPlan Base(ConvGeometry g, int pass) => new()
    {
        Pass = pass,
        Batch = g.Batch,
        InChannels = g.InChannels,
        InHeight = g.InHeight,
        InWidth = g.InWidth,
        OutChannels = g.OutChannels,
        KernelHeight = g.KernelHeight,
        KernelWidth = g.KernelWidth,
        Stride = g.Stride,
        Padding = g.Padding,
        OutHeight = g.OutHeight,
        OutWidth = g.OutWidth,
    };

    /// <summary>
    /// Rows (or columns) of packed dy needed by backward input along one axis: the largest
    /// <c>i + (ph + P - k) / S + pad</c> over phases ph, their rows i and the taps k that reach them.
    /// </summary>
    private static int PackedExtent(int size, int kernel, int stride, int padding, int pad)
    {
        int extent = 1;
        for (int ph = 0; ph < Math.Min(stride, size); ph++)
        {
            int rows = (size - ph + stride - 1) / stride;
            for (int k = 0; k < kernel; k++)
            {
                if ((ph + padding - k) % stride == 0)
                {
                    extent = Math.Max(extent, rows + (ph + padding - k) / stride + pad);
                }
            }
        }
        return extent;
    }

    private static int CheckedLength(long length, ConvGeometry g)
    {
        if (length + Slack > int.MaxValue)
        {
            throw new ArgumentException($"sparse convolution {g}: the packed operand exceeds 32-bit element counts");
        }
        return (int)length;
    }
}

/// <summary>
/// Runs of <see cref="Length"/> consecutive packed positions q that cover every output of a gather
/// pass (forward or backward input), and where each lane's result goes. The output phases of a
/// strided backward input share the packed dy, hence one set of runs over the union of their
/// positions, with a destination per (run, phase, lane). A run starts at the first output not yet
/// covered, so idle lanes come only from gaps in q (columns past the output width, batches past the
/// end). Built once per plan on the host (to choose the batch blocking) and by each CPU thread (cached).
/// </summary>
internal sealed class SparseConvStrips
{
    /// <summary>Lanes per run: four Vector256.</summary>
    public const int Length = 32;

    /// <summary>Output phases: 1, or Stride^2 (clipped to the image) for backward input.</summary>
    public int Phases { get; private init; }

    /// <summary>First packed position q of each run.</summary>
    public List<int> Start { get; } = [];

    /// <summary><see cref="Length"/> per (run, phase): output offset of the lane (without the channel term), -1 when idle.</summary>
    public List<int> Output { get; } = [];

    /// <summary>4 per (run, phase): 1 when the chunk's 8 lanes are all busy and write 8 consecutive floats.</summary>
    public List<byte> Contiguous { get; } = [];

    /// <summary>
    /// Stride 2 only, 4 per (run, phase row): 1 when the chunk's lanes of phases (ph, 0) and (ph, 1)
    /// are all busy and together write 16 consecutive floats (column 2j and 2j + 1 interleaved).
    /// </summary>
    public List<byte> Paired { get; } = [];

    /// <summary>Builds the runs of a gather plan.</summary>
    public static SparseConvStrips Build(in SparseConvPlan p)
    {
        int phaseRows = p.PhaseRows;
        int phaseCols = p.PhaseCols;
        int phases = phaseRows * phaseCols;
        var strips = new SparseConvStrips { Phases = phases };
        int bi = p.BatchInner;
        int hu = p.PackedHeight;
        int wu = p.PackedWidth;
        int rows = p.PhaseHeight(0);
        int cols = p.PhaseWidth(0);
        long end = long.MinValue;
        int start = 0;
        for (int bo = 0; bo < p.BatchOuter; bo++)
        {
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++)
                {
                    for (int lane = 0; lane < bi; lane++)
                    {
                        int b = bo * bi + lane;
                        if (b >= p.Batch)
                        {
                            continue;
                        }
                        int q = ((bo * hu + i) * wu + j) * bi + lane;
                        if (q >= end)
                        {
                            start = q;
                            end = (long)q + Length;
                            strips.Start.Add(q);
                            for (int t = 0; t < Length * phases; t++)
                            {
                                strips.Output.Add(-1);
                            }
                        }
                        int run = strips.Start.Count - 1;
                        for (int ph = 0; ph < phaseRows; ph++)
                        {
                            for (int pw = 0; pw < phaseCols; pw++)
                            {
                                if (i < p.PhaseHeight(ph) && j < p.PhaseWidth(pw))
                                {
                                    strips.Output[(run * phases + ph * phaseCols + pw) * Length + (q - start)] = p.OutputOffset(b, i, j, ph, pw);
                                }
                            }
                        }
                    }
                }
            }
        }
        int runs = strips.Start.Count;
        for (int run = 0; run < runs; run++)
        {
            for (int phase = 0; phase < phases; phase++)
            {
                int at = (run * phases + phase) * Length;
                for (int c = 0; c < Length / 8; c++)
                {
                    strips.Contiguous.Add((byte)(IsRun(strips.Output, at + c * 8, 1) ? 1 : 0));
                }
            }
            for (int ph = 0; ph < phaseRows; ph++)
            {
                for (int c = 0; c < Length / 8; c++)
                {
                    bool paired = p.Stride == 2 && phaseCols == 2;
                    if (paired)
                    {
                        int even = (run * phases + ph * 2) * Length + c * 8;
                        int odd = even + Length;
                        paired = IsRun(strips.Output, even, 2);
                        for (int lane = 0; lane < 8 && paired; lane++)
                        {
                            paired = strips.Output[odd + lane] == strips.Output[even + lane] + 1;
                        }
                    }
                    strips.Paired.Add((byte)(paired ? 1 : 0));
                }
            }
        }
        return strips;
    }

    /// <summary>
    /// Estimated cost of one output row over all runs, assuming <paramref name="tapsPerRow"/>
    /// kept taps per row: 4 vector FMAs per tap per run, plus per chunk store 1 (contiguous),
    /// 1 per phase (paired) or 8 per phase (scattered).
    /// </summary>
    public double Cost(double tapsPerRow)
    {
        double cost = Start.Count * 4 * tapsPerRow;
        int phaseRows = Paired.Count / Math.Max(1, Start.Count * 4);
        int phaseCols = Phases / Math.Max(1, phaseRows);
        for (int run = 0; run < Start.Count; run++)
        {
            for (int ph = 0; ph < phaseRows; ph++)
            {
                for (int c = 0; c < 4; c++)
                {
                    if (Paired[(run * phaseRows + ph) * 4 + c] != 0)
                    {
                        cost += 2;
                        continue;
                    }
                    for (int pw = 0; pw < phaseCols; pw++)
                    {
                        cost += Contiguous[(run * Phases + ph * phaseCols + pw) * 4 + c] != 0 ? 1 : 8;
                    }
                }
            }
        }
        return cost;
    }

    /// <summary>True when the 8 lanes from <paramref name="at"/> are busy and step by <paramref name="step"/>.</summary>
    private static bool IsRun(List<int> output, int at, int step)
    {
        int first = output[at];
        if (first < 0)
        {
            return false;
        }
        for (int lane = 1; lane < 8; lane++)
        {
            if (output[at + lane] != first + step * lane)
            {
                return false;
            }
        }
        return true;
    }
}
