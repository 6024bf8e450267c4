using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Every kernel family, loaded once for one accelerator. Create one per accelerator and keep it:
/// loading compiles kernels, which must never happen inside a training step.
/// </summary>
public sealed class KernelLibrary
{
    /// <summary>Loads every kernel family for <paramref name="accelerator"/>, which runs every kernel ILGPU offers.</summary>
    public KernelLibrary(Accelerator accelerator)
        : this(accelerator, KernelFeatures.All)
    {
    }

    /// <summary>
    /// Loads every kernel family for <paramref name="accelerator"/>; a kernel that needs what
    /// <paramref name="features"/> lacks throws <see cref="KernelNotSupportedException"/> here.
    /// </summary>
    public KernelLibrary(Accelerator accelerator, KernelFeatures features)
    {
        Launch = new KernelLaunch(accelerator, features);
        Activation = new ActivationKernels(Launch);
        Pool = new PoolKernels(Launch);
        BatchNorm = new BatchNormKernels(Launch);
        SoftmaxCrossEntropy = new SoftmaxCrossEntropyKernels(Launch);
        Sgd = new SgdKernels(Launch);
        Gemm = new GemmKernels(Launch);
        Conv = new Conv2dKernels(Launch, Gemm);
        Gather = new GatherKernels(Launch);
        Augment = new AugmentKernels(Launch);
        Uplink = new UplinkKernels(Launch);
        ServerOptimizer = new ServerOptimizerKernels(Launch);
        TopK = new TopKKernels(Launch);
        Csr = new CsrKernels(Launch);
        SparseConv = new SparseConvKernels(Launch);
        IndexPack = new IndexPackKernels(Launch);
        SparseFormats = new SparseFormatKernels(Launch);
        Masks = new MaskKernels(Launch);
        Float16 = new Float16Kernels(Launch);
        Loaded = Launch.Loaded.ToArray();
    }

    /// <summary>The kernels this library loaded for its accelerator ("Type.Method"): what this kind of backend runs.</summary>
    public IReadOnlyList<string> Loaded { get; }

    /// <summary>Launch-size policy of this accelerator.</summary>
    public KernelLaunch Launch { get; }

    /// <summary>ReLU, residual add, bias, axpy.</summary>
    public ActivationKernels Activation { get; }

    /// <summary>2x2 max-pool and global average pool, forward and backward.</summary>
    public PoolKernels Pool { get; }

    /// <summary>2-D batch normalisation: training and inference forward, backward.</summary>
    public BatchNormKernels BatchNorm { get; }

    /// <summary>Softmax cross-entropy loss and gradient, argmax prediction, correct count.</summary>
    public SoftmaxCrossEntropyKernels SoftmaxCrossEntropy { get; }

    /// <summary>SGD step with momentum and weight decay over a flat parameter block.</summary>
    public SgdKernels Sgd { get; }

    /// <summary>Dense row-major GEMM (packed SIMD on the CPU accelerator, shared-memory tiles on GPUs).</summary>
    public GemmKernels Gemm { get; }

    /// <summary>NCHW 2-D convolution forward and backward, as implicit GEMMs on <see cref="Gemm"/>.</summary>
    public Conv2dKernels Conv { get; }

    /// <summary>Mini-batch gathering from device-resident datasets.</summary>
    public GatherKernels Gather { get; }

    /// <summary>Training-time image augmentation (random crop and flip).</summary>
    public AugmentKernels Augment { get; }

    /// <summary>Keep-where-non-zero, non-zero count and scaling for the federation's uplink and aggregation.</summary>
    public UplinkKernels Uplink { get; }

    /// <summary>FedAdam, FedYogi and FedAdagrad server steps over a flat block of model values.</summary>
    public ServerOptimizerKernels ServerOptimizer { get; }

    /// <summary>Exact magnitude top-K: select the threshold, mask, compress to (value, index) lists.</summary>
    public TopKKernels TopK { get; }

    /// <summary>CSR encode, decode and scatter-add of weight matrices (uploads, FedAvg).</summary>
    public CsrKernels Csr { get; }

    /// <summary>SWAT sparse convolutions (and linear layers): CSR weights, kept activations; cost scales with the kept entries.</summary>
    public SparseConvKernels SparseConv { get; }

    /// <summary>16-bit block-local packing of sorted index lists (the kept activations' positions) and its inverse.</summary>
    public IndexPackKernels IndexPack { get; }

    /// <summary>Lossless upload layouts of a CSR matrix: 16-bit packed columns and a bitmap of positions, with their readers.</summary>
    public SparseFormatKernels SparseFormats { get; }

    /// <summary>Position masks as bitmaps: marked from kept-index lists, and the positions two masks share (mask stability).</summary>
    public MaskKernels Masks { get; }

    /// <summary>fp32 to and from fp16 / bf16 bit patterns (round to nearest even), for 16-bit upload values.</summary>
    public Float16Kernels Float16 { get; }
}
