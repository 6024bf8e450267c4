namespace ZeroFL.Kernels;

/// <summary>
/// Shape of a 2-D convolution over NCHW input <c>[Batch, InChannels, InHeight, InWidth]</c> with
/// weights <c>[OutChannels, InChannels, KernelHeight, KernelWidth]</c> and output
/// <c>[Batch, OutChannels, OutHeight, OutWidth]</c>. Seen as a GEMM (im2col): M = OutChannels,
/// K = InChannels * KernelHeight * KernelWidth, N = Batch * OutHeight * OutWidth.
/// </summary>
public readonly record struct ConvGeometry(
    int Batch, int InChannels, int InHeight, int InWidth,
    int OutChannels, int KernelHeight, int KernelWidth, int Stride, int Padding)
{
    /// <summary>Output height: (H + 2P - KH) / S + 1.</summary>
    public int OutHeight => (InHeight + 2 * Padding - KernelHeight) / Stride + 1;

    /// <summary>Output width: (W + 2P - KW) / S + 1.</summary>
    public int OutWidth => (InWidth + 2 * Padding - KernelWidth) / Stride + 1;

    /// <summary>GEMM M: output channels.</summary>
    public int GemmM => OutChannels;

    /// <summary>GEMM K: InChannels * KernelHeight * KernelWidth.</summary>
    public int GemmK => InChannels * KernelHeight * KernelWidth;

    /// <summary>GEMM N: Batch * OutHeight * OutWidth.</summary>
    public long GemmN => (long)Batch * OutHeight * OutWidth;

    /// <summary>Elements of the input tensor.</summary>
    public long InputLength => (long)Batch * InChannels * InHeight * InWidth;

    /// <summary>Elements of the weight tensor.</summary>
    public long WeightLength => (long)OutChannels * InChannels * KernelHeight * KernelWidth;

    /// <summary>Elements of the output tensor.</summary>
    public long OutputLength => (long)Batch * OutChannels * OutHeight * OutWidth;

    /// <summary>Multiply-adds of the forward pass times two (dense FLOPs); each backward costs the same.</summary>
    public double ForwardFlops => 2.0 * GemmM * GemmK * GemmN;

    /// <summary>
    /// The constructor values only: the record's default ToString would also print the derived
    /// sizes, which divide by <see cref="Stride"/> and throw on the invalid geometries that
    /// <see cref="Validate"/> reports.
    /// </summary>
    public override string ToString() =>
        $"ConvGeometry(batch {Batch}, input {InChannels}x{InHeight}x{InWidth}, output channels {OutChannels}, kernel {KernelHeight}x{KernelWidth}, stride {Stride}, padding {Padding})";

    /// <summary>Throws with a clear message unless every dimension is valid.</summary>
    public void Validate()
    {
        if (Batch <= 0 || InChannels <= 0 || InHeight <= 0 || InWidth <= 0 || OutChannels <= 0
            || KernelHeight <= 0 || KernelWidth <= 0 || Stride <= 0 || Padding < 0)
        {
            throw new ArgumentException($"invalid convolution geometry {this}");
        }
        if (OutHeight <= 0 || OutWidth <= 0)
        {
            throw new ArgumentException($"convolution geometry {this} gives an empty output");
        }
        if (InputLength > int.MaxValue || OutputLength > int.MaxValue || WeightLength > int.MaxValue)
        {
            throw new ArgumentException($"convolution geometry {this} exceeds 32-bit element counts");
        }
    }
}
