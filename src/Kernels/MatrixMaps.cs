namespace ZeroFL.Kernels;

/// <summary>
/// Where element <c>i</c> of one matrix axis lives. The index is split as
/// <c>i = (q2 * Size1 + q1) * Size0 + q0</c> and maps to a memory offset
/// <c>Offset + q2 * Stride2 + q1 * Stride1 + q0 * Stride0</c> plus a 2-D image coordinate
/// <c>(HOffset + q1 * HScale, WOffset + q0 * WScale)</c> used for padding checks. A dense axis is
/// <c>Size1 = Size0 = 1</c>, <c>i * Stride2</c>; an im2col axis <c>(channel, kh, kw)</c> or
/// <c>(batch, oh, ow)</c> uses all three digits. Row and column offsets of a matrix add up, so one
/// GEMM engine serves plain matrices, NCHW tensors seen as <c>[channels, batch * spatial]</c> and
/// the im2col matrix of a convolution read straight from the image.
/// </summary>
internal readonly struct AxisMap
{
    public AxisMap(int size1, int size0, int stride2, int stride1, int stride0, int offset, int hScale, int hOffset, int wScale, int wOffset)
    {
        Size1 = size1;
        Size0 = size0;
        Stride2 = stride2;
        Stride1 = stride1;
        Stride0 = stride0;
        Offset = offset;
        HScale = hScale;
        HOffset = hOffset;
        WScale = wScale;
        WOffset = wOffset;
    }

    public int Size1 { get; }

    public int Size0 { get; }

    public int Stride2 { get; }

    public int Stride1 { get; }

    public int Stride0 { get; }

    public int Offset { get; }

    public int HScale { get; }

    public int HOffset { get; }

    public int WScale { get; }

    public int WOffset { get; }

    /// <summary>A plain axis: element i at offset i * stride, image coordinate (0, 0).</summary>
    public static AxisMap Dense(int stride) => new(1, 1, stride, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>Decodes element <paramref name="i"/>.</summary>
    public AxisPoint Decode(int i)
    {
        int q0 = i % Size0;
        int rest = i / Size0;
        int q1 = rest % Size1;
        int q2 = rest / Size1;
        return new AxisPoint(
            Offset + q2 * Stride2 + q1 * Stride1 + q0 * Stride0,
            HOffset + q1 * HScale,
            WOffset + q0 * WScale);
    }
}

/// <summary>A decoded axis element: memory offset and image coordinate contribution.</summary>
internal readonly struct AxisPoint
{
    public AxisPoint(int offset, int h, int w)
    {
        Offset = offset;
        H = h;
        W = w;
    }

    public int Offset { get; }

    public int H { get; }

    public int W { get; }
}

/// <summary>
/// A matrix operand read by gathering: element (r, c) is <c>data[rows(r).Offset + cols(c).Offset]</c>,
/// or zero when <see cref="Height"/> is positive and the summed image coordinate falls outside
/// <c>[0, Height) x [0, Width)</c> (convolution padding).
/// </summary>
internal readonly struct GatherMatrix
{
    public GatherMatrix(AxisMap rows, AxisMap cols, int height, int width)
    {
        Rows = rows;
        Cols = cols;
        Height = height;
        Width = width;
    }

    public AxisMap Rows { get; }

    public AxisMap Cols { get; }

    /// <summary>Image height for padding checks; 0 means no checks (every element is in memory).</summary>
    public int Height { get; }

    public int Width { get; }

    public bool Checked => Height > 0;

    /// <summary>Dense row-major [rows, cols] with leading dimension ld, or its transpose view.</summary>
    public static GatherMatrix Dense(bool transposed, int ld) => transposed
        ? new GatherMatrix(AxisMap.Dense(1), AxisMap.Dense(ld), 0, 0)
        : new GatherMatrix(AxisMap.Dense(ld), AxisMap.Dense(1), 0, 0);

    /// <summary>Element (r, c); scalar path shared by the GPU kernel and the fallback.</summary>
    public float Load(ILGPU.ArrayView<float> data, int r, int c)
    {
        var row = Rows.Decode(r);
        var col = Cols.Decode(c);
        if (Height > 0)
        {
            int h = row.H + col.H;
            int w = row.W + col.W;
            if ((uint)h >= (uint)Height || (uint)w >= (uint)Width)
            {
                return 0f;
            }
        }
        return data[row.Offset + col.Offset];
    }
}

/// <summary>The output operand: element (r, c) lives at <c>rows(r).Offset + cols(c).Offset</c>.</summary>
internal readonly struct ScatterMatrix
{
    public ScatterMatrix(AxisMap rows, AxisMap cols)
    {
        Rows = rows;
        Cols = cols;
    }

    public AxisMap Rows { get; }

    public AxisMap Cols { get; }

    /// <summary>Dense row-major with leading dimension ld.</summary>
    public static ScatterMatrix Dense(int ld) => new(AxisMap.Dense(ld), AxisMap.Dense(1));

    public int OffsetOf(int r, int c) => Rows.Decode(r).Offset + Cols.Decode(c).Offset;
}

/// <summary>
/// One generalised GEMM: <c>C = Alpha * A[M, K] * B[K, N] + Beta * C</c> with every operand
/// described by maps. Beta = 0 overwrites C without reading it.
/// </summary>
internal readonly struct GemmProblem
{
    public GemmProblem(int m, int n, int k, float alpha, float beta, GatherMatrix a, GatherMatrix b, ScatterMatrix c)
    {
        M = m;
        N = n;
        K = k;
        Alpha = alpha;
        Beta = beta;
        A = a;
        B = b;
        C = c;
    }

    public int M { get; }

    public int N { get; }

    public int K { get; }

    public float Alpha { get; }

    public float Beta { get; }

    public GatherMatrix A { get; }

    public GatherMatrix B { get; }

    public ScatterMatrix C { get; }
}
