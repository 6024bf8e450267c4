using ILGPU;

namespace ZeroFL.Engine.Autograd;

/// <summary>
/// A float32 tensor on the device: a shape and a borrowed view (it never owns memory). Activations
/// borrow from the step's <see cref="Memory.Workspace"/>, parameters from the model's
/// <see cref="Modules.ParameterStore"/>. A reshaped tensor shares the data and gradient of its base.
/// </summary>
public sealed class Tensor
{
    private ArrayView<float> grad;

    /// <summary>Wraps <paramref name="data"/> with <paramref name="shape"/>; lengths must agree.</summary>
    public Tensor(ArrayView<float> data, int[] shape, bool requiresGrad = false)
    {
        long length = ShapeLength(shape);
        if (data.Length != length)
        {
            throw new ArgumentException($"tensor shape [{string.Join(", ", shape)}] has {length} elements, data view has {data.Length}");
        }
        Data = data;
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

    /// <summary>Number of elements.</summary>
    public long Length => Data.Length;

    /// <summary>The values.</summary>
    public ArrayView<float> Data { get; }

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

    /// <summary>Removes the gradient view (used when a step's workspace is reset).</summary>
    internal void DetachGrad()
    {
        if (Root is null)
        {
            grad = default;
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
