using ILGPU;

namespace ZeroFL.Engine.Autograd;

/// <summary>
/// A float32 tensor on the device: a shape and a borrowed view (it never owns memory). Activations
/// borrow from the step's <see cref="Memory.Workspace"/>, parameters from the model's
/// <see cref="Modules.ParameterStore"/>. A reshaped tensor shares the data and gradient of its base.
/// A tensor of the tape (<see cref="Tape.NewTensor"/>) is freed once the forward has released it and
/// every backward that reads it has run; reading its data after that throws.
/// </summary>
public sealed class Tensor
{
    private readonly ArrayView<float> data;
    private ArrayView<float> grad;

    /// <summary>Wraps <paramref name="data"/> with <paramref name="shape"/>; lengths must agree.</summary>
    public Tensor(ArrayView<float> data, int[] shape, bool requiresGrad = false)
    {
        long length = ShapeLength(shape);
        if (data.Length != length)
        {
            throw new ArgumentException($"tensor shape [{string.Join(", ", shape)}] has {length} elements, data view has {data.Length}");
        }
        this.data = data;
        Shape = (int[])shape.Clone();
        RequiresGrad = requiresGrad;
    }

    private Tensor(Tensor root, int[] shape)
        : this(root.Data, shape, root.RequiresGrad)
    {
        Root = root;
    }

    /// <summary>Dimensions, outermost first (NCHW for images).</summary>
    public int[] Shape { get; }

    /// <summary>The values.</summary>
    public ArrayView<float> Data
    {
        get
        {
            if ((Root ?? this).Freed)
            {
                throw new InvalidOperationException($"{this} was freed: the forward released it and no recorded backward reads it");
            }
            return data;
        }
    }

    /// <summary>Number of elements.</summary>
    public long Length => data.Length;

    /// <summary>Whether the tape computes a gradient for this tensor.</summary>
    public bool RequiresGrad { get; }

    /// <summary>The tensor whose storage this one shares (itself unless reshaped).</summary>
    public Tensor? Root { get; }

    /// <summary>The gradient view, or an empty view if none was attached yet.</summary>
    public ArrayView<float> Grad => Root is null ? grad : Root.Grad;

    /// <summary>True once a gradient buffer is attached.</summary>
    public bool HasGrad => Grad.IsValid && Grad.Length == Length;

    /// <summary>Size of dimension <paramref name="axis"/>.</summary>
    public int Dim(int axis) => Shape[axis];

    /// <summary>A tensor of another shape with the same elements, sharing data and gradient.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (ShapeLength(shape) != Length)
        {
            throw new ArgumentException($"cannot reshape [{string.Join(", ", Shape)}] to [{string.Join(", ", shape)}]");
        }
        return new Tensor(Root ?? this, shape);
    }

    /// <summary>Attaches the gradient buffer (the tape or the parameter store does this).</summary>
    public void AttachGrad(ArrayView<float> gradient)
    {
        if (gradient.Length != Length)
        {
            throw new ArgumentException($"gradient has {gradient.Length} elements, tensor has {Length}");
        }
        if (Root is not null)
        {
            Root.AttachGrad(gradient);
            return;
        }
        grad = gradient;
    }

    /// <summary>Holds on the data of a tape's tensor: the forward's (until released) and each recorded backward's that reads it.</summary>
    internal int Holds { get; set; }

    /// <summary>True when the data comes from the tape's arena and is freed when the last hold goes.</summary>
    internal bool OwnedByTape { get; set; }

    /// <summary>True once the data went back to the arena.</summary>
    internal bool Freed { get; set; }

    /// <summary>True when the gradient came from the tape's arena (not a parameter's).</summary>
    internal bool GradOwnedByTape { get; set; }

    /// <summary>
    /// Run instead of keeping the data for the one backward still holding it when the forward
    /// releases the tensor (it keeps what that backward needs in a smaller form); null for none.
    /// </summary>
    internal Action? Compact { get; set; }

    /// <summary>True once <see cref="Compact"/> ran and the data was freed.</summary>
    internal bool Compacted { get; set; }

    /// <summary>Removes the gradient view (used when a step's workspace is reset).</summary>
    internal void DetachGrad()
    {
        if (Root is null)
        {
            grad = default;
            GradOwnedByTape = false;
        }
    }

    /// <summary>Product of the dimensions; throws on a negative dimension.</summary>
    public static long ShapeLength(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]");
            }
            n *= d;
        }
        return n;
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor[{string.Join(", ", Shape)}]";
}
