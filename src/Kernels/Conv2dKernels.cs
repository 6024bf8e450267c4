using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// 2-D convolution over NCHW tensors (zero padding, any stride and kernel size, no bias), run as
/// implicit GEMMs on <see cref="GemmKernels"/>: the im2col matrix is never stored, the GEMM packs
/// its panels straight from the image (on the CPU) or reads its tiles from it (on a GPU), and writes
/// the NCHW output in place. Shapes: x [Batch, InChannels, InHeight, InWidth], w [OutChannels,
/// InChannels, KernelHeight, KernelWidth], y [Batch, OutChannels, OutHeight, OutWidth].
/// <list type="bullet">
/// <item>Forward: y[Cout, N] = w[Cout, K] * im2col(x)[K, N] (M = Cout, K = Cin*KH*KW, N = Batch*Ho*Wo); one launch.</item>
/// <item>BackwardWeight: dw[Cout, K] += dy[Cout, N] * im2col(x)^T[N, K]; one launch.</item>
/// <item>BackwardInput: a transposed convolution, split by output phase (h mod Stride, w mod Stride)
/// so that only taps that hit a given phase are multiplied: Stride^2 launches (1 at stride 1), each
/// dx_phase[Cin, N'] += w'[Cin, Cout*taps] * dy-gather[Cout*taps, N'].</item>
/// </list>
/// The launch count never depends on the batch size, and no device workspace is needed
/// (<see cref="WorkspaceLength"/> is 0); the CPU GEMM's packing buffers are thread-local (about
/// 4.2 MB per core). CPU reference: <see cref="Reference.ConvReference"/>.
/// </summary>
public sealed class Conv2dKernels
{
    private readonly KernelLaunch launch;
    private readonly GemmKernels gemm;

    /// <summary>Creates the convolution ops on top of <paramref name="gemm"/> (which holds the kernels).</summary>
    public Conv2dKernels(KernelLaunch launch, GemmKernels gemm)
    {
        ArgumentNullException.ThrowIfNull(launch);
        ArgumentNullException.ThrowIfNull(gemm);
        this.launch = launch;
        this.gemm = gemm;
    }

    /// <summary>
    /// Floats of device scratch that <see cref="Forward"/>, <see cref="BackwardInput"/> and
    /// <see cref="BackwardWeight"/> need for <paramref name="g"/> (one buffer serves all three).
    /// The implicit-GEMM design needs none: this is 0, and any view (even an empty one) may be passed.
    /// </summary>
    public long WorkspaceLength(ConvGeometry g)
    {
        g.Validate();
        return 0;
    }

    /// <summary>y = conv(x, w); overwrites y. x [B, Cin, H, W], w [Cout, Cin, KH, KW], y [B, Cout, Ho, Wo].</summary>
    public void Forward(ConvGeometry g, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> workspace)
    {
        Check(g, x, w, y, workspace, "conv forward", "input x", "weights w", "output y");
        var problem = new GemmProblem(g.GemmM, (int)g.GemmN, g.GemmK, 1f, 0f,
            WeightRows(g), Im2col(g), OutputRows(g));
        gemm.RunMapped(problem, w, x, y);
    }

    /// <summary>
    /// dx += dL/dx for dy = dL/dy [B, Cout, Ho, Wo] and weights w [Cout, Cin, KH, KW]; dx is [B, Cin, H, W].
    /// With <paramref name="overwrite"/>, dx = dL/dx and dx's old contents (garbage allowed) are never
    /// read: each phase's GEMM runs with beta 0, or dx is zeroed first when some phase gets no tap.
    /// </summary>
    public void BackwardInput(ConvGeometry g, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, ArrayView<float> workspace,
        bool overwrite = false)
    {
        Check(g, dx, w, dy, workspace, "conv backward input", "input gradient dx", "weights w", "output gradient dy");
        int s = g.Stride;
        int p = g.Padding;
        float beta = 1f;
        if (overwrite)
        {
            bool everyPhase = true;
            for (int h0 = 0; h0 < Math.Min(s, g.InHeight); h0++)
            {
                for (int w0 = 0; w0 < Math.Min(s, g.InWidth); w0++)
                {
                    everyPhase &= Phase(h0, p, s, g.KernelHeight, g.InHeight).Taps > 0 && Phase(w0, p, s, g.KernelWidth, g.InWidth).Taps > 0;
                }
            }
            if (everyPhase)
            {
                beta = 0f;
            }
            else
            {
                launch.Zero(dx.SubView(0, g.InputLength));
            }
        }
        int hw = g.InHeight * g.InWidth;
        int outHw = g.OutHeight * g.OutWidth;
        int kernelArea = g.KernelHeight * g.KernelWidth;
        for (int h0 = 0; h0 < Math.Min(s, g.InHeight); h0++)
        {
            var rows = Phase(h0, p, s, g.KernelHeight, g.InHeight);
            if (rows.Taps == 0)
            {
                continue;
            }
            for (int w0 = 0; w0 < Math.Min(s, g.InWidth); w0++)
            {
                var cols = Phase(w0, p, s, g.KernelWidth, g.InWidth);
                if (cols.Taps == 0)
                {
                    continue;
                }
                // A[ci, (co, i, j)] = w[co, ci, rh + S*i, rw + S*j]
                var a = new GatherMatrix(
                    AxisMap.Dense(kernelArea),
                    new AxisMap(rows.Taps, cols.Taps, g.InChannels * kernelArea, s * g.KernelWidth, s,
                        rows.FirstTap * g.KernelWidth + cols.FirstTap, 0, 0, 0, 0),
                    0, 0);
                // B[(co, i, j), (b, hh, ww)] = dy[b, co, qh + hh - i, qw + ww - j], zero outside [0, Ho) x [0, Wo)
                var b = new GatherMatrix(
                    new AxisMap(rows.Taps, cols.Taps, outHw, -g.OutWidth, -1, 0, -1, 0, -1, 0),
                    new AxisMap(rows.Count, cols.Count, g.OutChannels * outHw, g.OutWidth, 1,
                        rows.FirstOut * g.OutWidth + cols.FirstOut, 1, rows.FirstOut, 1, cols.FirstOut),
                    g.OutHeight, g.OutWidth);
                // C[ci, (b, hh, ww)] = dx[b, ci, h0 + S*hh, w0 + S*ww]
                var c = new ScatterMatrix(
                    AxisMap.Dense(hw),
                    new AxisMap(rows.Count, cols.Count, g.InChannels * hw, s * g.InWidth, s, h0 * g.InWidth + w0, 0, 0, 0, 0));
                int n = g.Batch * rows.Count * cols.Count;
                int k = g.OutChannels * rows.Taps * cols.Taps;
                gemm.RunMapped(new GemmProblem(g.InChannels, n, k, 1f, beta, a, b, c), w, dy, dx);
            }
        }
    }

    /// <summary>dw += dL/dw for dy = dL/dy [B, Cout, Ho, Wo] and the forward input x [B, Cin, H, W]; dw is [Cout, Cin, KH, KW].</summary>
    public void BackwardWeight(ConvGeometry g, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dw, ArrayView<float> workspace)
    {
        Check(g, x, dw, dy, workspace, "conv backward weight", "input x", "weight gradient dw", "output gradient dy");
        var im2col = Im2col(g);
        var output = OutputRows(g);
        var a = new GatherMatrix(output.Rows, output.Cols, 0, 0);
        var b = new GatherMatrix(im2col.Cols, im2col.Rows, g.InHeight, g.InWidth);
        var c = new ScatterMatrix(AxisMap.Dense(g.GemmK), AxisMap.Dense(1));
        gemm.RunMapped(new GemmProblem(g.GemmM, g.GemmK, (int)g.GemmN, 1f, 1f, a, b, c), dy, x, dw);
    }

    /// <summary>w as the GEMM's A: [Cout, Cin*KH*KW], row-major.</summary>
    private static GatherMatrix WeightRows(ConvGeometry g) => GatherMatrix.Dense(false, g.GemmK);

    /// <summary>
    /// The im2col matrix [(ci, kh, kw), (b, oh, ow)] read from x: element = x[b, ci, oh*S - P + kh,
    /// ow*S - P + kw], zero in the padding.
    /// </summary>
    private static GatherMatrix Im2col(ConvGeometry g)
    {
        int s = g.Stride;
        int p = g.Padding;
        int hw = g.InHeight * g.InWidth;
        var rows = new AxisMap(g.KernelHeight, g.KernelWidth, hw, g.InWidth, 1, 0, 1, 0, 1, 0);
        var cols = new AxisMap(g.OutHeight, g.OutWidth, g.InChannels * hw, s * g.InWidth, s, -p * g.InWidth - p, s, -p, s, -p);
        return new GatherMatrix(rows, cols, g.InHeight, g.InWidth);
    }

    /// <summary>An NCHW output [B, C, Ho, Wo] seen as the matrix [C, (b, oh, ow)].</summary>
    private static ScatterMatrix OutputRows(ConvGeometry g)
    {
        int outHw = g.OutHeight * g.OutWidth;
        return new ScatterMatrix(AxisMap.Dense(outHw), new AxisMap(1, outHw, g.OutChannels * outHw, 0, 1, 0, 0, 0, 0, 0));
    }

    /// <summary>
    /// The input rows (or columns) h = first + S*t of one backward-input phase: the kernel taps
    /// kh = FirstTap + S*i (i &lt; Taps) that reach them, their count, and the first output row
    /// FirstOut such that oh = FirstOut + t - i.
    /// </summary>
    private static (int Taps, int FirstTap, int Count, int FirstOut) Phase(int first, int padding, int stride, int kernel, int size)
    {
        int firstTap = (first + padding) % stride;
        int taps = firstTap < kernel ? (kernel - firstTap + stride - 1) / stride : 0;
        int count = (size - first + stride - 1) / stride;
        int firstOut = (first + padding - firstTap) / stride;
        return (taps, firstTap, count, firstOut);
    }

    private void Check(ConvGeometry g, ArrayView<float> input, ArrayView<float> weights, ArrayView<float> output,
        ArrayView<float> workspace, string what, string inputName, string weightName, string outputName)
    {
        g.Validate();
        HostCheck.Length(input, g.InputLength, $"{what} {inputName}");
        HostCheck.Length(weights, g.WeightLength, $"{what} {weightName}");
        HostCheck.Length(output, g.OutputLength, $"{what} {outputName}");
        HostCheck.Length(workspace, WorkspaceLength(g), $"{what} workspace");
    }
}
